import { Link, NavLink, useLocation } from '@remix-run/react';
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef } from '@tanstack/react-table';
import { useRootData } from './csrf';
import { Toast } from './toast';

/** Shared bits of the operations views (issue 8): sub-navigation, server-side table, pager. */

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

export function withParams(search: string, changes: Record<string, string | null>): string {
  const sp = new URLSearchParams(search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === '') sp.delete(k);
    else sp.set(k, v);
  }
  if (!('page' in changes)) sp.delete('page');
  const s = sp.toString();
  return s ? `?${s}` : '?';
}

/** TanStack Table with server-side sorting and paging: the URL is the state. */
export function ServerTable<T>({
  rows, columns, sortable, sort, dir, page, pageSize, pageCount, rowKey, className,
}: {
  rows: T[];
  columns: ColumnDef<T, any>[];
  sortable: ReadonlySet<string>;
  sort: string | null;
  dir: 'asc' | 'desc';
  page: number;
  pageSize: number;
  pageCount: number;
  rowKey: (row: T) => string;
  className?: string;
}) {
  const location = useLocation();
  const table = useReactTable({
    data: rows,
    columns,
    getCoreRowModel: getCoreRowModel(),
    manualSorting: true,
    manualPagination: true,
    manualFiltering: true,
    pageCount,
    getRowId: (r) => rowKey(r),
    state: {
      sorting: sort ? [{ id: sort, desc: dir === 'desc' }] : [],
      pagination: { pageIndex: page - 1, pageSize },
    },
  });
  return (
    <table className={className}>
      <thead>
        {table.getHeaderGroups().map((hg) => (
          <tr key={hg.id}>
            {hg.headers.map((h) => {
              const id = h.column.id;
              const active = sort === id;
              const nextDir = active && dir === 'desc' ? 'asc' : 'desc';
              const label = flexRender(h.column.columnDef.header, h.getContext());
              return (
                <th key={h.id} aria-sort={active ? (dir === 'asc' ? 'ascending' : 'descending') : undefined}>
                  {sortable.has(id) ? (
                    <Link to={withParams(location.search, { sort: id, dir: nextDir })} preventScrollReset>
                      {label} {active ? (dir === 'asc' ? '▲' : '▼') : ''}
                    </Link>
                  ) : (
                    label
                  )}
                </th>
              );
            })}
          </tr>
        ))}
      </thead>
      <tbody>
        {table.getRowModel().rows.map((r) => (
          <tr key={r.id} data-row-id={r.id}>
            {r.getVisibleCells().map((c) => (
              <td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Pager({ page, pageCount }: { page: number; pageCount: number }) {
  const location = useLocation();
  if (pageCount <= 1) return null;
  return (
    <nav className="pager" aria-label="Pages">
      {page > 1 ? <Link to={withParams(location.search, { page: String(page - 1) })}>← Previous</Link> : <span className="muted">← Previous</span>}
      <span>
        Page {page} of {pageCount}
      </span>
      {page < pageCount ? <Link to={withParams(location.search, { page: String(page + 1) })}>Next →</Link> : <span className="muted">Next →</span>}
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
