import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ActionToast, OpsNav, Pager, ServerTable, Time, withParams } from '~/components/ops';
import { capaDeliveriesData, retryCapaDelivery } from '~/capa-log.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = () => [{ title: 'Capa delivery log · KYC Desk' }];

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
      <button type="submit" className="small" disabled={busy || Boolean(row.blocked)} title={row.blocked ?? 'Ask Capa to send it again'}>
        Retry
      </button>
    </Form>
  );
}

export default function CapaDeliveries() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const location = useLocation();
  const navigation = useNavigation();
  const busy = navigation.state === 'submitting';

  const columns = useMemo(
    () => [
      col.accessor('createdAt', {
        header: 'Created',
        cell: (c) => (
          <Link to={`/capa/deliveries/${c.row.original.id}`}>
            <Time iso={c.getValue()} />
          </Link>
        ),
      }),
      col.accessor('eventType', { header: 'Event' }),
      col.accessor('status', { header: 'Status', cell: (c) => <span className={`badge ${c.getValue()}`}>{c.getValue()}</span> }),
      col.accessor('retryAttempts', { header: 'Automatic retries' }),
      col.accessor('manualRetryCount', { header: 'Manual retries', cell: (c) => `${c.getValue()} of ${d.limits.perNotification}` }),
      col.accessor('updatedAt', { header: 'Updated', cell: (c) => <Time iso={c.getValue()} /> }),
      col.display({ id: 'retry', header: '', cell: (c) => <RetryButton row={c.row.original} canRetry={d.canRetry} busy={busy} /> }),
    ],
    [d.limits.perNotification, d.canRetry, busy],
  );

  return (
    <main className="page wide">
      <h1>Capa delivery log</h1>
      <OpsNav />
      <p className="muted">
        Capa’s own record of the webhooks it tried to send us. A FAILED delivery can be sent again: Capa allows {d.limits.perNotification}{' '}
        manual retries per delivery and {d.limits.perMinute} per minute for our account (used in the last minute:{' '}
        <strong data-testid="budget">
          {d.budget.used} of {d.budget.limit}
        </strong>
        {d.budget.blockedUntil ? <span className="error">; retries paused until {d.budget.blockedUntil.slice(11, 19)} UTC</span> : null}).
      </p>
      <ActionToast result={result} />

      <nav className="chips" aria-label="Filter by status">
        <Link to={withParams(location.search, { status: null })} className={`chip ${d.status ? '' : 'active'}`}>
          All
        </Link>
        {STATUSES.map((s) => (
          <Link key={s} to={withParams(location.search, { status: s })} className={`chip ${d.status === s ? 'active' : ''}`}>
            {s}
          </Link>
        ))}
      </nav>

      {!d.ok ? (
        <div className="toast error" role="alert">
          Capa’s delivery log could not be read: {d.error}
        </div>
      ) : d.rows.length === 0 ? (
        <div className="card empty">
          <p>No deliveries{d.status ? ` with status ${d.status}` : ''}.</p>
        </div>
      ) : (
        <>
          <p className="muted">
            {d.total} deliver{d.total === 1 ? 'y' : 'ies'}
          </p>
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
