import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData, useLocation, useRouteError } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { requireOperator } from '~/auth.server';
import { useRootData } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { routeErrorMessage } from '~/components/route-error';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { StateBadge, TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { driftPageData } from '~/refresh.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'drift:page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return driftPageData(who, new URL(request.url).searchParams);
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();

export default function DriftPage() {
  const { t } = useTranslation('drift');
  const fmt = useFormat();
  const say = useSay();
  const d = useLoaderData<typeof loader>();
  const { operator } = useRootData();
  const location = useLocation();
  const maxDay = Math.max(1, ...d.perDay.map((x) => x.count));

  const columns = useMemo(
    () => [
      col.accessor('detectedAt', { header: t('columns.detected'), cell: (c) => <TimeAgo iso={c.getValue()} /> }),
      col.accessor('email', {
        header: t('columns.customer'),
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
      col.accessor('wasState', { header: t('columns.we_showed'), cell: (c) => <StateBadge state={c.getValue()} /> }),
      col.accessor('nowState', { header: t('columns.capa_said'), cell: (c) => <StateBadge state={c.getValue()} /> }),
      col.accessor('missedEvents', {
        header: t('columns.likely_missed'),
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
            {c.row.original.evidence ? <div className="muted small">{c.row.original.evidence.map((m) => say(m)).join('; ')}</div> : null}
          </>
        ),
      }),
      col.accessor('jobName', {
        header: t('columns.detected_by'),
        enableSorting: false,
        cell: (c) => (
          <>
            {c.getValue()}
            <div className="muted">
              {c.row.original.runId ? (
                <Link to={`/refresh/${c.row.original.runId}`}>{t('run_link', { id: c.row.original.runId })}</Link>
              ) : (
                (c.row.original.triggeredBy ?? c.row.original.jobId ?? '')
              )}
            </div>
          </>
        ),
      }),
      col.accessor('currentState', { header: t('columns.now'), enableSorting: false, cell: (c) => <StateBadge state={c.getValue()} /> }),
    ],
    [t, say],
  );

  const sortable = new Set(['detectedAt', 'wasState', 'nowState']);
  const filtered = Boolean(d.params.day || d.params.now);

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>{t('heading')}</h1>
        {operator && operator.role !== 'viewer' ? (
          <Link to="/refresh" className="button">
            {t('refresh_stale')}
          </Link>
        ) : null}
      </div>
      <p className="muted">{t('intro')}</p>

      <section className="card" aria-labelledby="per-day">
        <h2 id="per-day">{t('per_day.heading')}</h2>
        {d.perDay.length === 0 ? (
          <p className="muted">{t('per_day.none')}</p>
        ) : (
          <table className="compact">
            <thead>
              <tr>
                <th>{t('per_day.day')}</th>
                <th>{t('per_day.entries')}</th>
                <th>{t('per_day.customers')}</th>
                <th aria-hidden="true" />
              </tr>
            </thead>
            <tbody>
              {d.perDay.map((x) => (
                <tr key={x.day} className={d.params.day === x.day ? 'selected' : undefined}>
                  <td>
                    <Link to={withParams(location.search, { day: d.params.day === x.day ? null : x.day })}>{fmt.day(x.day)}</Link>
                  </td>
                  <td>{fmt.number(x.count)}</td>
                  <td>{fmt.number(x.customers)}</td>
                  <td>
                    <meter min={0} max={maxDay} value={x.count} title={t('per_day.meter_title', { count: x.count })} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {d.transitions.length ? (
          <p className="muted">
            {t('per_day.most_common')}{' '}
            {d.transitions.slice(0, 5).map((tr, i) => (
              <span key={`${tr.wasState}-${tr.nowState}`}>
                {i ? ' · ' : ''}
                <StateBadge state={tr.wasState} /> →{' '}
                <Link to={withParams(location.search, { now: tr.nowState })}>
                  <StateBadge state={tr.nowState} />
                </Link>{' '}
                ({fmt.number(tr.count)})
              </span>
            ))}
          </p>
        ) : null}
      </section>

      <p className="muted" aria-live="polite">
        {t('count', { count: d.total })}
        {d.params.day ? t('on_day', { day: fmt.day(d.params.day) }) : ''}
        {d.params.now ? t('where_capa_said', { state: d.params.now }) : ''}
        {filtered ? (
          <>
            {' '}
            · <Link to="/drift">{t('show_all')}</Link>
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
            <p>{filtered ? t('empty_filtered') : t('empty')}</p>
          </div>
        }
      />

      <Pager page={d.page} pageCount={d.pageCount} />

      <section className="card" aria-labelledby="unmapped">
        <h2 id="unmapped">{t('unmapped.heading')}</h2>
        {d.unmapped.length === 0 ? (
          <p className="muted">{t('unmapped.none')}</p>
        ) : (
          <>
            <p className="muted">{t('unmapped.intro')}</p>
            <ul>
              {d.unmapped.map((u) => (
                <li key={u.id}>
                  <Link to={`/users/${u.id}`}>
                    <code>{u.externalUserId}</code>
                  </Link>{' '}
                  — <code>{u.unmappedResult}</code> {t('unmapped.while')} <StateBadge state={u.kycState} /> ({t('unmapped.read')}{' '}
                  <TimeAgo iso={u.capaConfirmedAt} />)
                </li>
              ))}
            </ul>
          </>
        )}
        {d.linkExpired ? (
          <p>
            {t('link_expired', { count: d.linkExpired })} <Link to="/refresh#link-expired">{t('link_expired_link')}</Link>.
          </p>
        ) : null}
      </section>
    </main>
  );
}

export function ErrorBoundary() {
  const { t } = useTranslation('drift');
  const error = useRouteError();
  return (
    <main className="page">
      <h1>{t('heading')}</h1>
      <p className="error">{routeErrorMessage(error, t('load_failed'), t)}</p>
    </main>
  );
}
