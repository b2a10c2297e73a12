import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useRouteError } from '@remix-run/react';
import { routeErrorMessage } from '~/components/route-error';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo, useState } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput, useRootData } from '~/components/csrf';
import { ExportCsvLink } from '~/components/export-link';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { Toast } from '~/components/toast';
import { TimeAgo } from '~/components/ui';
import { NotificationActionSchema, notificationsListData, resendMessage, stopProgrammeAction } from '~/notifications.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = () => [{ title: 'Notifications — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  const data = await notificationsListData(who, new URL(request.url).searchParams);
  return { ...data, requestId: newRequestId() };
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const form = Object.fromEntries([...(await request.formData()).entries()].filter(([k, v]) => k !== 'csrf' && typeof v === 'string'));
  const parsed = NotificationActionSchema.safeParse(form);
  if (!parsed.success) return { ok: false, message: 'That request was incomplete; reload the page and try again.' };
  if (parsed.data.intent === 'resend') return resendMessage(request, who, parsed.data);
  return stopProgrammeAction(request, who, parsed.data.programmeId);
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();

function pct(n: number, of: number): string {
  return of > 0 ? `${Math.round((n / of) * 100)}%` : '—';
}

function RowActions({ row, requestId }: { row: Row; requestId: string }) {
  const { operator } = useRootData();
  const [open, setOpen] = useState(false);
  if (!operator || operator.role === 'viewer') return null;
  return (
    <div className="row-actions">
      {open ? (
        <Form method="post" className="inline" onSubmit={() => setOpen(false)}>
          <CsrfInput />
          <input type="hidden" name="intent" value="resend" />
          <input type="hidden" name="messageId" value={row.id} />
          <input type="hidden" name="requestId" value={`${requestId}${row.id.slice(0, 8)}`} />
          <select name="locale" defaultValue={row.locale} aria-label="Language">
            <option value="es">Español</option>
            <option value="en">English</option>
          </select>{' '}
          <button type="submit" className="small">
            Send again
          </button>{' '}
          <button type="button" className="secondary small" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </Form>
      ) : (
        <button type="button" className="secondary small" onClick={() => setOpen(true)}>
          Resend…
        </button>
      )}
      {row.programmeId && row.step === 0 ? (
        <Form method="post" className="inline">
          <CsrfInput />
          <input type="hidden" name="intent" value="stop" />
          <input type="hidden" name="programmeId" value={row.programmeId} />
          <button type="submit" className="secondary small" title="Stop the follow-up reminders for this rejection">
            Stop follow-ups
          </button>
        </Form>
      ) : null}
    </div>
  );
}

export default function Notifications() {
  const data = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const location = useLocation();
  const { params, conversion: c } = data;

  const columns = useMemo(
    () => [
      col.accessor('createdAt', { header: 'Created', cell: (x) => <TimeAgo iso={x.getValue()} /> }),
      col.accessor('address', {
        header: 'Customer',
        enableSorting: false,
        cell: (x) => (
          <>
            <Link to={`/users/${x.row.original.userId}`}>{x.getValue()}</Link>
            {x.row.original.externalUserId ? (
              <div className="muted">
                <code>{x.row.original.externalUserId}</code>
              </div>
            ) : null}
          </>
        ),
      }),
      col.accessor('kind', {
        header: 'Message',
        cell: (x) => (
          <>
            {x.row.original.kindLabel}
            {x.row.original.step !== null && x.row.original.step > 0 ? <span className="muted"> #{x.row.original.step}</span> : null}
            <div className="muted">
              {x.row.original.channel} · {x.row.original.locale} ·{' '}
              <Link to={`/notifications/preview?message=${x.row.original.id}`}>preview</Link>
            </div>
          </>
        ),
      }),
      col.accessor('status', {
        header: 'Status',
        cell: (x) => (
          <>
            <span className={`badge notif-${x.getValue()}`} data-status={x.getValue()}>
              {x.getValue()}
            </span>
            {x.row.original.reason ? <div className={x.getValue() === 'failed' ? 'error' : 'muted'}>{x.row.original.reason}</div> : null}
            {x.getValue() === 'queued' && x.row.original.lastError ? (
              <div className="muted">retrying: {x.row.original.lastError}</div>
            ) : null}
          </>
        ),
      }),
      col.accessor('attempts', { header: 'Attempts' }),
      col.accessor('linkUrl', {
        header: 'Link carried',
        enableSorting: false,
        cell: (x) => (x.getValue() ? <code className="small">{x.getValue()}</code> : <span className="muted">—</span>),
      }),
      col.accessor('sentAt', {
        header: 'Settled',
        enableSorting: false,
        cell: (x) => <TimeAgo iso={x.getValue() ?? x.row.original.failedAt ?? x.row.original.cancelledAt} />,
      }),
      col.display({ id: 'actions', header: '', cell: (x) => <RowActions row={x.row.original} requestId={data.requestId} /> }),
    ],
    [data.requestId],
  );

  const sortable = new Set(['createdAt', 'status', 'kind', 'attempts']);
  const filtered = Boolean(params.status || params.kind || params.channel || params.q || params.from || params.to || params.userId);

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>Notifications</h1>
        <ExportCsvLink path="/notifications/export.csv" />
        <Link to="/notifications/preview" className="button secondary">
          Preview templates
        </Link>
      </div>
      {result ? <Toast tone={result.ok ? 'ok' : 'error'} text={result.message} /> : null}

      <section className="card" aria-labelledby="conv-h">
        <h2 id="conv-h">Rejected customers: retry conversion</h2>
        <Form method="get" className="inline">
          {[...new URLSearchParams(location.search).entries()]
            .filter(([k]) => k !== 'cfrom' && k !== 'cto')
            .map(([k, v], i) => (
              <input key={`${k}${i}`} type="hidden" name={k} value={v} />
            ))}
          <label htmlFor="cfrom" className="inline">
            Rejected from
          </label>{' '}
          <input id="cfrom" name="cfrom" type="date" defaultValue={params.cfrom} />{' '}
          <label htmlFor="cto" className="inline">
            to
          </label>{' '}
          <input id="cto" name="cto" type="date" defaultValue={params.cto} />{' '}
          <button type="submit" className="secondary small">
            Show
          </button>
        </Form>
        <table className="conversion" aria-label="Conversion funnel">
          <thead>
            <tr>
              <th>Rejected</th>
              <th>Re-invited</th>
              <th>Resubmitted</th>
              <th>Verified</th>
            </tr>
          </thead>
          <tbody>
            <tr data-testid="conversion">
              <td>{c.rejected}</td>
              <td>
                {c.reinvited} <span className="muted">{pct(c.reinvited, c.rejected)}</span>
              </td>
              <td>
                {c.resubmitted} <span className="muted">{pct(c.resubmitted, c.reinvited)}</span>
              </td>
              <td>
                {c.verified} <span className="muted">{pct(c.verified, c.resubmitted)}</span>
              </td>
            </tr>
          </tbody>
        </table>
        <p className="muted">
          {c.active} programme{c.active === 1 ? '' : 's'} still sending follow-ups; {c.stoppedByOperator} stopped by an operator.
          Percentages are of the previous step.
        </p>
      </section>

      <nav className="chips" aria-label="Filter by status">
        <Link to={withParams(location.search, { status: null })} className={`chip ${!params.status ? 'active' : ''}`}>
          All
        </Link>
        {(['queued', 'sent', 'failed', 'cancelled'] as const).map((s) => (
          <Link key={s} to={withParams(location.search, { status: s })} className={`chip ${params.status === s ? 'active' : ''}`}>
            {s} <strong>{data.counts[s]}</strong>
          </Link>
        ))}
      </nav>

      <Form method="get" className="filters card" role="search">
        {params.status ? <input type="hidden" name="status" value={params.status} /> : null}
        <input type="hidden" name="sort" value={params.sort} />
        <input type="hidden" name="dir" value={params.dir} />
        <div>
          <label htmlFor="q">Customer</label>
          <input id="q" name="q" type="search" defaultValue={params.q ?? ''} placeholder="exact e-mail, external id or message id" />
        </div>
        <div>
          <label htmlFor="kind">Message</label>
          <select id="kind" name="kind" defaultValue={params.kind ?? ''}>
            <option value="">Any</option>
            <option value="kyc_link">Verification link</option>
            <option value="kyc_retry">Not approved — try again</option>
            <option value="kyc_retry_reminder">Reminder</option>
          </select>
        </div>
        <div>
          <label htmlFor="channel">Channel</label>
          <select id="channel" name="channel" defaultValue={params.channel ?? ''}>
            <option value="">Any</option>
            <option value="email">E-mail</option>
            <option value="sms">SMS</option>
          </select>
        </div>
        <div>
          <label htmlFor="from">Created from</label>
          <input id="from" name="from" type="date" defaultValue={params.from} />
        </div>
        <div>
          <label htmlFor="to">to</label>
          <input id="to" name="to" type="date" defaultValue={params.to} />
        </div>
        <div className="filter-buttons">
          <button type="submit">Apply</button> {filtered ? <Link to="/notifications">Clear</Link> : null}
        </div>
      </Form>

      <p className="muted" aria-live="polite">{`${data.total} message${data.total === 1 ? '' : 's'}${filtered ? ' match' : ''}`}</p>

      <ServerTable
        rows={data.rows}
        columns={columns}
        sortable={sortable}
        sort={params.sort}
        dir={params.dir}
        page={data.page}
        pageSize={data.pageSize}
        pageCount={data.pageCount}
        rowCount={data.total}
        rowKey={(r) => r.id}
        rowProps={(r) => ({ 'data-message-id': r.id })}
        className="notifications-table"
        empty={
          <div className="card empty">
            <p>
              {filtered ? (
                <>
                  No message matches these filters. <Link to="/notifications">Clear the filters</Link>.
                </>
              ) : (
                'No messages yet. Links generated with “e-mail it to the customer” and rejected customers’ retry invitations appear here.'
              )}
            </p>
          </div>
        }
      />

      <Pager page={data.page} pageCount={data.pageCount} />
    </main>
  );
}

export function ErrorBoundary() {
  const error = useRouteError();
  const text = routeErrorMessage(error, 'The notifications could not be loaded.');
  return (
    <main className="page">
      <h1>Notifications</h1>
      <p className="error">{text}</p>
      <p>
        <Link to="/notifications">Try again</Link>
      </p>
    </main>
  );
}
