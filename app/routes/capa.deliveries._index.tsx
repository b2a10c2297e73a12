import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { capaDeliveriesData, retryCapaDelivery } from '~/capa-log.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { ActionToast, OpsNav, Pager, ServerTable, Time, withParams } from '~/components/ops';
import { pageTitle } from '~/i18n';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'capa-log:list.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  return capaDeliveriesData(who, new URL(request.url).searchParams);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  return retryCapaDelivery(request, who, who.form);
}

type Row = Awaited<ReturnType<typeof loader>>['rows'][number];
const col = createColumnHelper<Row>();
const STATUSES = ['PENDING', 'SENT', 'FAILED', 'NOT_SENT'] as const;

function RetryButton({ row, canRetry, busy }: { row: Row; canRetry: boolean; busy: boolean }) {
  const { t } = useTranslation('capa-log');
  const say = useSay();
  // A new request id each time the row changes: the id is what makes a double click one action.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const requestId = useMemo(() => newRequestId(), [row.id, row.manualRetryCount, row.status]);
  if (!canRetry) return null;
  return (
    <Form method="post" className="inline">
      <CsrfInput />
      <input type="hidden" name="intent" value="retry" />
      <input type="hidden" name="id" value={row.id} />
      <input type="hidden" name="requestId" value={requestId} />
      <button
        type="submit"
        className="small"
        disabled={busy || Boolean(row.blocked)}
        title={row.blocked ? say(row.blocked) : t('list.retry_title')}
      >
        {t('list.retry')}
      </button>
    </Form>
  );
}

export default function CapaDeliveries() {
  const { t } = useTranslation('capa-log');
  const fmt = useFormat();
  const say = useSay();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const location = useLocation();
  const navigation = useNavigation();
  const busy = navigation.state === 'submitting';

  const columns = useMemo(
    () => [
      col.accessor('createdAt', {
        header: t('list.columns.created'),
        cell: (c) => (
          <Link to={`/capa/deliveries/${c.row.original.id}`}>
            <Time iso={c.getValue()} />
          </Link>
        ),
      }),
      col.accessor('eventType', { header: t('list.columns.event') }),
      col.accessor('status', {
        header: t('list.columns.status'),
        cell: (c) => (
          <span className={`badge ${c.getValue()}`} title={c.getValue()}>
            {t(`statuses.${c.getValue()}`, { defaultValue: c.getValue() })}
          </span>
        ),
      }),
      col.accessor('retryAttempts', { header: t('list.columns.automatic'), cell: (c) => fmt.number(c.getValue()) }),
      col.accessor('manualRetryCount', {
        header: t('list.columns.manual'),
        cell: (c) => t('list.manual_of', { count: c.getValue(), limit: d.limits.perNotification }),
      }),
      col.accessor('updatedAt', { header: t('list.columns.updated'), cell: (c) => <Time iso={c.getValue()} /> }),
      col.display({ id: 'retry', header: '', cell: (c) => <RetryButton row={c.row.original} canRetry={d.canRetry} busy={busy} /> }),
    ],
    [d.limits.perNotification, d.canRetry, busy, t, fmt],
  );

  return (
    <main className="page wide">
      <h1>{t('list.heading')}</h1>
      <OpsNav />
      <p className="muted">
        {t('list.intro', { perNotification: d.limits.perNotification, perMinute: d.limits.perMinute })}{' '}
        <strong data-testid="budget">{t('list.budget', { used: d.budget.used, limit: d.budget.limit })}</strong>
        {d.budget.blockedUntil ? (
          <span className="error">{t('list.paused_until', { until: fmt.time(d.budget.blockedUntil, { seconds: true }) })}</span>
        ) : null}
        {t('list.intro_end')}
      </p>
      <ActionToast result={result} />

      <nav className="chips" aria-label={t('list.status_filter_label')}>
        <Link to={withParams(location.search, { status: null })} className={`chip ${d.status ? '' : 'active'}`}>
          {t('list.all')}
        </Link>
        {STATUSES.map((s) => (
          <Link key={s} to={withParams(location.search, { status: s })} className={`chip ${d.status === s ? 'active' : ''}`} title={s}>
            {t(`statuses.${s}`)}
          </Link>
        ))}
      </nav>

      {!d.ok ? (
        <div className="toast error" role="alert">
          {t('list.unreadable', { reason: say(d.error) })}
        </div>
      ) : d.rows.length === 0 ? (
        <div className="card empty">
          <p>{d.status ? t('list.empty_status', { status: d.status }) : t('list.empty')}</p>
        </div>
      ) : (
        <>
          <p className="muted">{t('list.count', { count: d.total })}</p>
          <ServerTable
            rows={d.rows}
            columns={columns}
            sortable={new Set()}
            sort={null}
            dir="desc"
            page={d.page}
            pageSize={d.pageSize}
            pageCount={d.pageCount}
            rowKey={(r) => r.id}
          />
          <Pager page={d.page} pageCount={d.pageCount} />
        </>
      )}
    </main>
  );
}
