import { NavLink } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { useRootData } from './csrf';
import type { ActionResult } from '../action-result';
import { useFormat } from './format';
import { useSay } from './message';
import { Toast } from './toast';

/** Shared bits of the operations views: sub-navigation, action toast, time. */

// The table pieces live in ./server-table (shared by every list page); re-exported for the ops views.
export { Pager, ServerTable, withParams } from './server-table';

const RANK = { viewer: 0, compliance: 1, admin: 2 } as const;
const LINKS = [
  { to: '/webhooks', label: 'ops_nav.inbox', minRole: 'viewer' },
  { to: '/capa/deliveries', label: 'ops_nav.capa_log', minRole: 'compliance' },
  { to: '/queues', label: 'ops_nav.queues', minRole: 'admin' },
  { to: '/admin/queues', label: 'ops_nav.job_board', minRole: 'admin', external: true },
  { to: '/admin/settings', label: 'ops_nav.webhook_settings', minRole: 'admin' },
] as const;

export function OpsNav() {
  const { t } = useTranslation('common');
  const { operator } = useRootData();
  if (!operator) return null;
  return (
    <nav className="chips" aria-label={t('ops_nav.label')}>
      {LINKS.filter((l) => RANK[operator.role] >= RANK[l.minRole]).map((l) =>
        'external' in l ? (
          // bull-board is not a Remix route: a full page load.
          <a key={l.to} href={l.to} className="chip">
            {t(l.label)}
          </a>
        ) : (
          <NavLink key={l.to} to={l.to} end={false} className={({ isActive }) => `chip ${isActive ? 'active' : ''}`}>
            {t(l.label)}
          </NavLink>
        ),
      )}
    </nav>
  );
}

/** An operations action's answer (a tone and a message code), worded in the operator's language. */
export function ActionToast({ result }: { result: ActionResult | null | undefined }) {
  const say = useSay();
  return result ? <Toast tone={result.tone} text={say(result)} /> : null;
}

/** A moment to the second, in the operator's language and time zone; the stored UTC value on hover. */
export function Time({ iso }: { iso: string | null | undefined }) {
  const fmt = useFormat();
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {fmt.dateTime(iso, { seconds: true })}
    </time>
  );
}
