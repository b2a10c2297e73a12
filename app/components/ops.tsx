import { NavLink } from '@remix-run/react';
import { useRootData } from './csrf';
import { Toast } from './toast';

/** Shared bits of the operations views: sub-navigation, action toast, time. */

// The table pieces live in ./server-table (shared by every list page); re-exported for the ops views.
export { Pager, ServerTable, withParams } from './server-table';

const RANK = { viewer: 0, compliance: 1, admin: 2 } as const;
const LINKS = [
  { to: '/webhooks', label: 'Webhook inbox', minRole: 'viewer' },
  { to: '/capa/deliveries', label: 'Capa delivery log', minRole: 'compliance' },
  { to: '/queues', label: 'Queues', minRole: 'admin' },
  { to: '/admin/queues', label: 'Job board', minRole: 'admin', external: true },
  { to: '/admin/settings', label: 'Webhook settings', minRole: 'admin' },
] as const;

export function OpsNav() {
  const { operator } = useRootData();
  if (!operator) return null;
  return (
    <nav className="chips" aria-label="Operations">
      {LINKS.filter((l) => RANK[operator.role] >= RANK[l.minRole]).map((l) =>
        'external' in l ? (
          // bull-board is not a Remix route: a full page load.
          <a key={l.to} href={l.to} className="chip">
            {l.label}
          </a>
        ) : (
          <NavLink key={l.to} to={l.to} end={false} className={({ isActive }) => `chip ${isActive ? 'active' : ''}`}>
            {l.label}
          </NavLink>
        ),
      )}
    </nav>
  );
}

export function ActionToast({ result }: { result: { tone: 'ok' | 'error' | 'info'; message: string } | null | undefined }) {
  return result ? <Toast tone={result.tone} text={result.message} /> : null;
}

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {iso.replace('T', ' ').slice(0, 19)}
    </time>
  );
}
