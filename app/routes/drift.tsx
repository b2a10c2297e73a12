import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData, useLocation, useRouteError } from '@remix-run/react';
import { routeErrorMessage } from '~/components/route-error';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { requireOperator } from '~/auth.server';
import { useRootData } from '~/components/csrf';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { StateBadge, TimeAgo } from '~/components/ui';
import { driftPageData } from '~/refresh.server';

export const meta: MetaFunction = () => [{ title: 'Drift — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return driftPageData(who, new URL(request.url).searchParams);
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();

export default function DriftPage() {
  const d = useLoaderData<typeof loader>();
  const { operator } = useRootData();
  const location = useLocation();
  const maxDay = Math.max(1, ...d.perDay.map((x) => x.count));

  const columns = useMemo(
    () => [
      col.accessor('detectedAt', { header: 'Detected', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
      col.accessor('email', {
        header: 'Customer',
        enableSorting: false,
        cell: (c) => (
          <>
            <Link to={`/users/${c.row.original.userId}`}>{c.getValue()}</Link>
            <div className="muted">
              <code>{c.row.original.externalUserId}</code>
            </div>
          </>
        ),
      }),
      col.accessor('wasState', { header: 'We showed', cell: (c) => <StateBadge state={c.getValue()} /> }),
      col.accessor('nowState', { header: 'Capa said', cell: (c) => <StateBadge state={c.getValue()} /> }),
      col.accessor('missedEvents', {
        header: 'Likely missed',
        enableSorting: false,
        cell: (c) => (
          <>
            {c.getValue() ? (
              c
                .getValue()!
                .split(',')
                .map((e) => <code key={e}>{e} </code>)
            ) : (
              <span className="muted">—</span>
            )}
            {c.row.original.evidence ? <div className="muted small">{c.row.original.evidence}</div> : null}
          </>
        ),
      }),
      col.accessor('jobName', {
        header: 'Detected by',
        enableSorting: false,
        cell: (c) => (
          <>
            {c.getValue()}
            <div className="muted">
              {c.row.original.runId ? (
                <Link to={`/refresh/${c.row.original.runId}`}>refresh run #{c.row.original.runId}</Link>
              ) : (
                (c.row.original.triggeredBy ?? c.row.original.jobId ?? '')
              )}
            </div>
          </>
        ),
      }),
      col.accessor('currentState', { header: 'Now', enableSorting: false, cell: (c) => <StateBadge state={c.getValue()} /> }),
    ],
    [],
  );

  const sortable = new Set(['detectedAt', 'wasState', 'nowState']);
  const filtered = Boolean(d.params.day || d.params.now);

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>Drift</h1>
        {operator && operator.role !== 'viewer' ? (
          <Link to="/refresh" className="button">
            Refresh stale customers
          </Link>
        ) : null}
      </div>
      <p className="muted">
        Every time Capa’s Get KYC Details showed a different state than ours, the state machine applied Capa’s and recorded it here. A spike
        means Capa’s webhooks or our intake are losing events.
      </p>

      <section className="card" aria-labelledby="per-day">
        <h2 id="per-day">Drift per day (last 30 days, UTC)</h2>
        {d.perDay.length === 0 ? (
          <p className="muted">No drift in the last 30 days: every state Capa reported reached us by webhook.</p>
        ) : (
          <table className="compact">
            <thead>
              <tr>
                <th>Day</th>
                <th>Entries</th>
                <th>Customers</th>
                <th aria-hidden="true" />
              </tr>
            </thead>
            <tbody>
              {d.perDay.map((x) => (
                <tr key={x.day} className={d.params.day === x.day ? 'selected' : undefined}>
                  <td>
                    <Link to={withParams(location.search, { day: d.params.day === x.day ? null : x.day })}>{x.day}</Link>
                  </td>
                  <td>{x.count}</td>
                  <td>{x.customers}</td>
                  <td>
                    <meter min={0} max={maxDay} value={x.count} title={`${x.count} drift entries`} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {d.transitions.length ? (
          <p className="muted">
            Most common:{' '}
            {d.transitions.slice(0, 5).map((t, i) => (
              <span key={`${t.wasState}-${t.nowState}`}>
                {i ? ' · ' : ''}
                {t.wasState} → <Link to={withParams(location.search, { now: t.nowState })}>{t.nowState}</Link> ({t.count})
              </span>
            ))}
          </p>
        ) : null}
      </section>

      <p className="muted" aria-live="polite">
        {d.total} drift entr{d.total === 1 ? 'y' : 'ies'}
        {d.params.day ? ` on ${d.params.day}` : ''}
        {d.params.now ? ` where Capa said ${d.params.now}` : ''}
        {filtered ? (
          <>
            {' '}
            · <Link to="/drift">Show all</Link>
          </>
        ) : null}
      </p>

      <ServerTable
        rows={d.rows}
        columns={columns}
        sortable={sortable}
        sort={d.params.sort}
        dir={d.params.dir === 'asc' ? 'asc' : 'desc'}
        page={d.page}
        pageSize={d.pageSize}
        pageCount={d.pageCount}
        rowCount={d.total}
        rowKey={(r) => String(r.id)}
        rowProps={(r) => ({ 'data-drift-id': String(r.id) })}
        className="users-table"
        empty={
          <div className="card empty">
            <p>{filtered ? 'No drift matches this filter.' : 'No drift recorded yet.'}</p>
          </div>
        }
      />

      <Pager page={d.page} pageCount={d.pageCount} />

      <section className="card" aria-labelledby="unmapped">
        <h2 id="unmapped">Results we could not map</h2>
        {d.unmapped.length === 0 ? (
          <p className="muted">Every verificationResult Capa returned is one we know.</p>
        ) : (
          <>
            <p className="muted">
              Capa returned a verificationResult we do not know. The value is kept as it came and the customer’s state was not changed:
              check the details and tell an engineer which state it means.
            </p>
            <ul>
              {d.unmapped.map((u) => (
                <li key={u.id}>
                  <Link to={`/users/${u.id}`}>
                    <code>{u.externalUserId}</code>
                  </Link>{' '}
                  — <code>{u.unmappedResult}</code> while <StateBadge state={u.kycState} /> (read <TimeAgo iso={u.capaConfirmedAt} />)
                </li>
              ))}
            </ul>
          </>
        )}
        {d.linkExpired ? (
          <p>
            {d.linkExpired} customer{d.linkExpired === 1 ? ' has' : 's have'} an expired KYC link and ha{d.linkExpired === 1 ? 's' : 've'}{' '}
            not started — <Link to="/refresh#link-expired">see who needs a new link</Link>.
          </p>
        ) : null}
      </section>
    </main>
  );
}

export function ErrorBoundary() {
  const error = useRouteError();
  return (
    <main className="page">
      <h1>Drift</h1>
      <p className="error">{routeErrorMessage(error, 'The drift log could not be loaded. Try again in a moment.')}</p>
    </main>
  );
}
