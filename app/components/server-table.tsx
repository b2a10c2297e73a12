import { Link, useLocation } from '@remix-run/react';
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef } from '@tanstack/react-table';
import type { ComponentPropsWithoutRef, ReactNode } from 'react';
import { useTranslation } from 'react-i18next';

/**
 * The one way to render a table (ARCHITECTURE.md principle 6): TanStack Table v8, sorted, filtered
 * and paged by the server, with the URL as the state.
 */

/** The URL is the table's state: every control builds a link, so back/forward and sharing work. */
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

/** Attributes for one body row: data-* attributes that tests select on, a class, a style. */
export type RowProps = Omit<ComponentPropsWithoutRef<'tr'>, 'children'> & { [attr: `data-${string}`]: string | undefined };

const NO_SORT: ReadonlySet<string> = new Set();

/**
 * TanStack Table with server-side sorting and paging.
 * - Columns whose id is in `sortable` get a header link that flips `sort`/`dir` in the URL; the
 *   others (and every column when `sortable` is omitted) are plain headers.
 * - `rowProps` sets per-row attributes; without it a row gets `data-row-id={rowKey(row)}` when
 *   `rowKey` is given, and nothing otherwise.
 * - `empty` is rendered instead of the table when there is nothing to show: `rowCount` (the
 *   server-side total) is 0, or, without `rowCount`, this page has no rows.
 */
export function ServerTable<T>({
  rows,
  columns,
  sortable = NO_SORT,
  sort = null,
  dir = 'desc',
  page,
  pageSize,
  pageCount,
  rowCount,
  rowKey,
  rowProps,
  empty,
  className,
}: {
  rows: T[];
  columns: ColumnDef<T, any>[];
  sortable?: ReadonlySet<string>;
  sort?: string | null;
  dir?: 'asc' | 'desc';
  page?: number;
  pageSize?: number;
  pageCount?: number;
  rowCount?: number;
  rowKey?: (row: T) => string;
  rowProps?: (row: T) => RowProps;
  empty?: ReactNode;
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
    rowCount,
    getRowId: rowKey ? (r) => rowKey(r) : undefined,
    state: {
      sorting: sort ? [{ id: sort, desc: dir === 'desc' }] : [],
      ...(page !== undefined && pageSize !== undefined ? { pagination: { pageIndex: page - 1, pageSize } } : {}),
    },
  });
  if (empty !== undefined && (rowCount ?? rows.length) === 0) return <>{empty}</>;
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
          <tr key={r.id} {...(rowProps ? rowProps(r.original) : rowKey ? { 'data-row-id': r.id } : {})}>
            {r.getVisibleCells().map((c) => (
              <td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Previous / next links that keep every other URL parameter; `children` go after "Next →" (e.g. a page-size form). */
export function Pager({ page, pageCount, children }: { page: number; pageCount: number; children?: ReactNode }) {
  const { t } = useTranslation('common');
  const location = useLocation();
  if (pageCount <= 1) return null;
  return (
    <nav className="pager" aria-label={t('pager.label')}>
      {page > 1 ? (
        <Link to={withParams(location.search, { page: String(page - 1) })}>{t('pager.previous')}</Link>
      ) : (
        <span className="muted">{t('pager.previous')}</span>
      )}
      <span>{t('pager.page_of', { page, total: pageCount })}</span>
      {page < pageCount ? (
        <Link to={withParams(location.search, { page: String(page + 1) })}>{t('pager.next')}</Link>
      ) : (
        <span className="muted">{t('pager.next')}</span>
      )}
      {children}
    </nav>
  );
}
