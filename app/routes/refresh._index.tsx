import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation, useRouteError } from '@remix-run/react';
import { routeErrorMessage } from '~/components/route-error';
import { createColumnHelper, flexRender, getCoreRowModel, useReactTable, type RowSelectionState } from '@tanstack/react-table';
import { useMemo, useState } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { Pager, withParams } from '~/components/server-table';
import { StateBadge, TimeAgo } from '~/components/ui';
import { refreshPageData, runRefreshAction, type RefreshPreview } from '~/refresh.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = () => [{ title: 'Refresh stale customers — KYC Desk' }];

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

const KIND_LABEL: Record<string, string> = {
  scheduled: 'Scheduled cycle',
  all_stale: 'All stale (operator)',
  selected: 'Selected (operator)',
};

function PreviewCard({ p, requestId }: { p: RefreshPreview; requestId: string }) {
  const navigation = useNavigation();
  const starting = navigation.state === 'submitting' && navigation.formData?.get('intent') === 'start';
  return (
    <section className="card" aria-labelledby="preview" data-testid="refresh-preview">
      <h2 id="preview">
        Preview: {p.scope === 'all' ? 'refresh all stale customers' : `refresh ${p.calls} selected customer${p.calls === 1 ? '' : 's'}`}
      </h2>
      <ul>
        <li>
          <strong data-testid="preview-calls">{p.calls}</strong> Capa call{p.calls === 1 ? '' : 's'} (Get KYC Details, one per customer)
          {p.scope === 'all' && p.calls
            ? ` — ${Object.entries(p.byState)
                .map(([s, n]) => `${n} ${s.replace(/_/g, ' ').toLowerCase()}`)
                .join(', ')}`
            : ''}
        </li>
        {p.notInCapa ? (
          <li>
            {p.notInCapa} selected customer{p.notInCapa === 1 ? ' is' : 's are'} not in Capa yet and will be skipped
          </li>
        ) : null}
        {p.unknown ? (
          <li className="warn">
            {p.unknown} selected id{p.unknown === 1 ? ' does' : 's do'} not match a customer and will be skipped
          </li>
        ) : null}
        <li>
          ETA <strong data-testid="preview-eta">{p.eta}</strong> at the current limit of {p.ratePerSec} call{p.ratePerSec === 1 ? '' : 's'}
          /s shared with all other Capa work
          {p.backlog ? `, behind ${p.backlog} call${p.backlog === 1 ? '' : 's'} already queued` : ''}
          {p.rateLimitedForMs ? `; Capa asked us to wait ${Math.ceil(p.rateLimitedForMs / 1000)} s` : ''}
        </li>
        {!p.queueAvailable ? (
          <li className="warn">The job queue is not answering: the ETA ignores queued work, and the run starts when the queue is back.</li>
        ) : null}
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
            {starting ? 'Starting…' : `Start refresh (${p.calls} call${p.calls === 1 ? '' : 's'})`}
          </button>{' '}
          <Link to=".">Cancel</Link>
        </Form>
      ) : (
        <p className="muted">Nothing to refresh.</p>
      )}
    </section>
  );
}

export default function RefreshPage() {
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
            aria-label="Select every customer on this page"
            checked={table.getIsAllRowsSelected()}
            onChange={table.getToggleAllRowsSelectedHandler()}
          />
        ),
        cell: ({ row }) => (
          <input
            type="checkbox"
            name="userId"
            value={row.original.id}
            aria-label={`Select ${row.original.externalUserId}`}
            checked={row.getIsSelected()}
            onChange={row.getToggleSelectedHandler()}
          />
        ),
      }),
      col.accessor('email', {
        header: 'Customer',
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
        header: 'State',
        cell: (c) => (
          <>
            <StateBadge state={c.getValue()} />
            {c.row.original.linkExpired ? <span className="muted"> link expired</span> : null}
            {c.row.original.unmappedResult ? <span className="warn"> unmapped: {c.row.original.unmappedResult}</span> : null}
          </>
        ),
      }),
      col.accessor('capaConfirmedAt', { header: 'Capa last confirmed', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
      col.accessor('kycStateChangedAt', { header: 'State since', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
    ],
    [],
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

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>Refresh stale customers</h1>
        <Link to="/drift">Drift log</Link>
      </div>
      <p className="muted">
        A customer is stale when it waits in a state Capa can still move and Capa last confirmed it longer ago than: link sent{' '}
        {d.thresholdsMinutes.LINK_ISSUED} min, in progress {d.thresholdsMinutes.IN_PROGRESS} min, review needed{' '}
        {d.thresholdsMinutes.REVIEW_NEEDED} min. The scheduled cycle runs every {d.scanEverySeconds} s; every Capa call shares the limit of{' '}
        {d.ratePerSec}/s{d.queue.available ? ` (${d.queue.backlog} queued now)` : ' (job queue not answering)'}.
      </p>

      {errors ? (
        <p className="error" role="alert" data-testid="refresh-error">
          {Object.values(errors).join(' ')}
        </p>
      ) : null}

      <section className="card" aria-labelledby="all-stale">
        <h2 id="all-stale">
          {d.stale.total} stale customer{d.stale.total === 1 ? '' : 's'}
        </h2>
        <nav className="chips" aria-label="Filter by state">
          <Link to={withParams(location.search, { state: null })} className={`chip ${d.params.state ? '' : 'active'}`}>
            All <strong>{d.stale.total}</strong>
          </Link>
          {(['LINK_ISSUED', 'IN_PROGRESS', 'REVIEW_NEEDED'] as const).map((s) => (
            <Link key={s} to={withParams(location.search, { state: s })} className={`chip ${d.params.state === s ? 'active' : ''}`}>
              <StateBadge state={s} /> <strong>{d.stale[s]}</strong>
            </Link>
          ))}
        </nav>
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="preview" />
          <input type="hidden" name="scope" value="all" />
          <button type="submit" disabled={previewing || d.stale.total === 0}>
            Refresh all stale now…
          </button>
        </Form>
      </section>

      {preview ? <PreviewCard p={preview} requestId={d.requestId} /> : null}

      {d.total > 0 ? (
        <Form method="post" aria-label="Refresh selected customers">
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
              Preview refresh of {selected ? `these ${selected} selected` : 'the selected'}…
            </button>
          </p>
        </Form>
      ) : (
        <div className="card empty">
          <p>
            No customer is stale{d.params.state ? ` in ${d.params.state.replace(/_/g, ' ').toLowerCase()}` : ''}: Capa confirmed every
            waiting customer recently.
          </p>
        </div>
      )}

      <Pager page={d.page} pageCount={d.pageCount} />

      <section className="card" aria-labelledby="runs">
        <h2 id="runs">Recent refresh runs</h2>
        {d.runs.length === 0 ? (
          <p className="muted">No refresh has run yet.</p>
        ) : (
          <table className="compact">
            <thead>
              <tr>
                <th>Run</th>
                <th>Kind</th>
                <th>Status</th>
                <th>Progress</th>
                <th>Drift found</th>
                <th>Started</th>
              </tr>
            </thead>
            <tbody>
              {d.runs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={`/refresh/${r.id}`}>#{r.id}</Link>
                  </td>
                  <td>{KIND_LABEL[r.kind] ?? r.kind}</td>
                  <td>{r.status}</td>
                  <td>
                    <progress max={Math.max(1, r.progress.total)} value={r.progress.answered + r.progress.failed} />{' '}
                    {r.progress.answered + r.progress.failed}/{r.progress.total}
                    {r.progress.failed ? <span className="error"> ({r.progress.failed} failed)</span> : null}
                  </td>
                  <td>{r.progress.drift}</td>
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
        <h2 id="link-expired-h">Link expired — resend</h2>
        {d.linkExpired.length === 0 ? (
          <p className="muted">No customer is waiting on an expired link.</p>
        ) : (
          <>
            <p className="muted">
              These customers never started and their KYC link is past its lifetime. Open the customer to generate (and send) a new link.
            </p>
            <ul>
              {d.linkExpired.map((u) => (
                <li key={u.id}>
                  <Link to={`/users/${u.id}`}>{u.email}</Link> <code>{u.externalUserId}</code> — link sent{' '}
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
  const error = useRouteError();
  return (
    <main className="page">
      <h1>Refresh stale customers</h1>
      <p className="error">{routeErrorMessage(error, 'This page could not be loaded. Try again in a moment.')}</p>
    </main>
  );
}
