import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation, useRouteError } from '@remix-run/react';
import { createColumnHelper, flexRender, getCoreRowModel, useReactTable, type RowSelectionState } from '@tanstack/react-table';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useEta } from '~/components/eta';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { routeErrorMessage } from '~/components/route-error';
import { Pager, withParams } from '~/components/server-table';
import { StateBadge, TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { refreshPageData, runRefreshAction, type RefreshPreview } from '~/refresh.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'refresh:page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  const d = await refreshPageData(who, new URL(request.url).searchParams);
  return { ...d, requestId: newRequestId() };
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const result = await runRefreshAction(request, who, who.form);
  if (!result.ok) return data(result, { status: 400 });
  if ('runId' in result) throw redirect(`/refresh/${result.runId}`);
  return result;
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();

function PreviewCard({ p, requestId }: { p: RefreshPreview; requestId: string }) {
  const { t } = useTranslation('refresh');
  const fmt = useFormat();
  const eta = useEta();
  const navigation = useNavigation();
  const starting = navigation.state === 'submitting' && navigation.formData?.get('intent') === 'start';
  const byState = Object.entries(p.byState)
    .filter(([, n]) => n)
    .map(([state, n]) => t('preview.by_state', { state, n: fmt.number(n) }))
    .join(', ');
  return (
    <section className="card" aria-labelledby="preview" data-testid="refresh-preview">
      <h2 id="preview">{p.scope === 'all' ? t('preview.heading_all') : t('preview.heading_selected', { count: p.calls })}</h2>
      <ul>
        <li>
          <strong data-testid="preview-calls">{fmt.number(p.calls)}</strong> {t('preview.calls', { count: p.calls })}
          {p.scope === 'all' && p.calls && byState ? ` — ${byState}` : ''}
        </li>
        {p.notInCapa ? <li>{t('preview.not_in_capa', { count: p.notInCapa })}</li> : null}
        {p.unknown ? <li className="warn">{t('preview.unknown', { count: p.unknown })}</li> : null}
        <li>
          {t('preview.eta_label')} <strong data-testid="preview-eta">{eta(p.etaSeconds)}</strong>{' '}
          {t('preview.eta_rest', { rate: fmt.number(p.ratePerSec) })}
          {p.backlog ? t('preview.behind', { count: p.backlog }) : ''}
          {p.rateLimitedForMs ? t('preview.rate_limited', { duration: fmt.duration(Math.ceil(p.rateLimitedForMs / 1000) * 1000) }) : ''}
        </li>
        {!p.queueAvailable ? <li className="warn">{t('preview.queue_down')}</li> : null}
      </ul>
      {p.calls > 0 ? (
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="start" />
          <input type="hidden" name="scope" value={p.scope} />
          <input type="hidden" name="requestId" value={requestId} />
          {p.userIds.map((id) => (
            <input key={id} type="hidden" name="userId" value={id} />
          ))}
          <button type="submit" disabled={starting}>
            {starting ? t('preview.starting') : t('preview.start', { count: p.calls })}
          </button>{' '}
          <Link to=".">{t('preview.cancel')}</Link>
        </Form>
      ) : (
        <p className="muted">{t('preview.nothing')}</p>
      )}
    </section>
  );
}

export default function RefreshPage() {
  const { t } = useTranslation('refresh');
  const fmt = useFormat();
  const say = useSay();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const location = useLocation();
  const navigation = useNavigation();
  const [selection, setSelection] = useState<RowSelectionState>({});
  const preview = result && result.ok && 'preview' in result ? result.preview : null;
  const errors = result && !result.ok ? result.errors : null;

  const columns = useMemo(
    () => [
      col.display({
        id: 'select',
        header: ({ table }) => (
          <input
            type="checkbox"
            aria-label={t('columns.select_all')}
            checked={table.getIsAllRowsSelected()}
            onChange={table.getToggleAllRowsSelectedHandler()}
          />
        ),
        cell: ({ row }) => (
          <input
            type="checkbox"
            name="userId"
            value={row.original.id}
            aria-label={t('columns.select_row', { id: row.original.externalUserId })}
            checked={row.getIsSelected()}
            onChange={row.getToggleSelectedHandler()}
          />
        ),
      }),
      col.accessor('email', {
        header: t('columns.customer'),
        cell: (c) => (
          <>
            <Link to={`/users/${c.row.original.id}`}>{c.getValue()}</Link>
            <div className="muted">
              <code>{c.row.original.externalUserId}</code>
            </div>
          </>
        ),
      }),
      col.accessor('kycState', {
        header: t('columns.state'),
        cell: (c) => (
          <>
            <StateBadge state={c.getValue()} />
            {c.row.original.linkExpired ? <span className="muted"> {t('link_expired_badge')}</span> : null}
            {c.row.original.unmappedResult ? (
              <span className="warn"> {t('unmapped_badge', { value: c.row.original.unmappedResult })}</span>
            ) : null}
          </>
        ),
      }),
      col.accessor('capaConfirmedAt', { header: t('columns.capa_confirmed'), cell: (c) => <TimeAgo iso={c.getValue()} /> }),
      col.accessor('kycStateChangedAt', { header: t('columns.state_since'), cell: (c) => <TimeAgo iso={c.getValue()} /> }),
    ],
    [t],
  );
  const table = useReactTable({
    data: d.rows,
    columns,
    getRowId: (r) => r.id,
    getCoreRowModel: getCoreRowModel(),
    enableRowSelection: true,
    onRowSelectionChange: setSelection,
    manualSorting: true,
    manualPagination: true,
    manualFiltering: true,
    pageCount: d.pageCount,
    state: {
      rowSelection: selection,
      sorting: [{ id: d.params.sort, desc: d.params.dir === 'desc' }],
      pagination: { pageIndex: d.page - 1, pageSize: d.pageSize },
    },
  });
  const selected = Object.keys(selection).filter((k) => selection[k]).length;
  const sortable = new Set(['kycState', 'capaConfirmedAt', 'kycStateChangedAt']);
  const previewing = navigation.state === 'submitting' && navigation.formData?.get('intent') === 'preview';
  const minutes = (m: number) => fmt.duration(m * 60_000);

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>{t('heading')}</h1>
        <Link to="/drift">{t('drift_log')}</Link>
      </div>
      <p className="muted">
        {t('intro', {
          linkIssued: minutes(d.thresholdsMinutes.LINK_ISSUED),
          inProgress: minutes(d.thresholdsMinutes.IN_PROGRESS),
          reviewNeeded: minutes(d.thresholdsMinutes.REVIEW_NEEDED),
          every: fmt.duration(d.scanEverySeconds * 1000),
          rate: fmt.number(d.ratePerSec),
        })}
        {d.queue.available ? t('intro_queue', { count: d.queue.backlog }) : t('intro_queue_down')}
      </p>

      {errors ? (
        <p className="error" role="alert" data-testid="refresh-error">
          {Object.values(errors)
            .map((m) => say(m))
            .join(' ')}
        </p>
      ) : null}

      <section className="card" aria-labelledby="all-stale">
        <h2 id="all-stale">{t('stale', { count: d.stale.total })}</h2>
        <nav className="chips" aria-label={t('state_filter_label')}>
          <Link to={withParams(location.search, { state: null })} className={`chip ${d.params.state ? '' : 'active'}`}>
            {t('all')} <strong>{fmt.number(d.stale.total)}</strong>
          </Link>
          {(['LINK_ISSUED', 'IN_PROGRESS', 'REVIEW_NEEDED'] as const).map((s) => (
            <Link key={s} to={withParams(location.search, { state: s })} className={`chip ${d.params.state === s ? 'active' : ''}`}>
              <StateBadge state={s} /> <strong>{fmt.number(d.stale[s])}</strong>
            </Link>
          ))}
        </nav>
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="preview" />
          <input type="hidden" name="scope" value="all" />
          <button type="submit" disabled={previewing || d.stale.total === 0}>
            {t('refresh_all')}
          </button>
        </Form>
      </section>

      {preview ? <PreviewCard p={preview} requestId={d.requestId} /> : null}

      {d.total > 0 ? (
        <Form method="post" aria-label={t('selected_form_label')}>
          <CsrfInput />
          <input type="hidden" name="intent" value="preview" />
          <input type="hidden" name="scope" value="selected" />
          <table className="users-table">
            <thead>
              {table.getHeaderGroups().map((hg) => (
                <tr key={hg.id}>
                  {hg.headers.map((h) => {
                    const id = h.column.id;
                    const active = d.params.sort === id;
                    const nextDir = active && d.params.dir === 'asc' ? 'desc' : 'asc';
                    const label = flexRender(h.column.columnDef.header, h.getContext());
                    return (
                      <th key={h.id} aria-sort={active ? (d.params.dir === 'asc' ? 'ascending' : 'descending') : undefined}>
                        {sortable.has(id) ? (
                          <Link to={withParams(location.search, { sort: id, dir: nextDir })} preventScrollReset>
                            {label} {active ? (d.params.dir === 'asc' ? '▲' : '▼') : ''}
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
                <tr key={r.id} data-user-id={r.original.id}>
                  {r.getVisibleCells().map((c) => (
                    <td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          <p>
            <button type="submit" className="secondary" disabled={previewing}>
              {selected ? t('preview_selected_count', { count: selected }) : t('preview_selected')}
            </button>
          </p>
        </Form>
      ) : (
        <div className="card empty">
          <p>{d.params.state ? t('none_stale_in', { state: d.params.state }) : t('none_stale')}</p>
        </div>
      )}

      <Pager page={d.page} pageCount={d.pageCount} />

      <section className="card" aria-labelledby="runs">
        <h2 id="runs">{t('runs.heading')}</h2>
        {d.runs.length === 0 ? (
          <p className="muted">{t('runs.none')}</p>
        ) : (
          <table className="compact">
            <thead>
              <tr>
                <th>{t('runs.run')}</th>
                <th>{t('runs.kind')}</th>
                <th>{t('runs.status')}</th>
                <th>{t('runs.progress')}</th>
                <th>{t('runs.drift')}</th>
                <th>{t('runs.started')}</th>
              </tr>
            </thead>
            <tbody>
              {d.runs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={`/refresh/${r.id}`}>#{r.id}</Link>
                  </td>
                  <td>{t(`kinds.${r.kind}`, { defaultValue: r.kind })}</td>
                  <td title={r.status}>{t(`statuses.${r.status}`, { defaultValue: r.status })}</td>
                  <td>
                    <progress max={Math.max(1, r.progress.total)} value={r.progress.answered + r.progress.failed} />{' '}
                    {fmt.number(r.progress.answered + r.progress.failed)}/{fmt.number(r.progress.total)}
                    {r.progress.failed ? <span className="error"> {t('runs.failed', { count: r.progress.failed })}</span> : null}
                  </td>
                  <td>{fmt.number(r.progress.drift)}</td>
                  <td>
                    <TimeAgo iso={r.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section className="card" id="link-expired" aria-labelledby="link-expired-h">
        <h2 id="link-expired-h">{t('link_expired.heading')}</h2>
        {d.linkExpired.length === 0 ? (
          <p className="muted">{t('link_expired.none')}</p>
        ) : (
          <>
            <p className="muted">{t('link_expired.intro')}</p>
            <ul>
              {d.linkExpired.map((u) => (
                <li key={u.id}>
                  <Link to={`/users/${u.id}`}>{u.email}</Link> <code>{u.externalUserId}</code> {t('link_expired.sent')}{' '}
                  <TimeAgo iso={u.kycStateChangedAt} />
                </li>
              ))}
            </ul>
          </>
        )}
      </section>
    </main>
  );
}

export function ErrorBoundary() {
  const { t } = useTranslation('refresh');
  const error = useRouteError();
  return (
    <main className="page">
      <h1>{t('heading')}</h1>
      <p className="error">{routeErrorMessage(error, t('load_failed'), t)}</p>
    </main>
  );
}
