import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useRouteError } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput, useRootData } from '~/components/csrf';
import { ExportCsvLink } from '~/components/export-link';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { routeErrorMessage } from '~/components/route-error';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { Toast } from '~/components/toast';
import { TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { HIDDEN_FOR_ROLE } from '~/pii';
import {
  NotificationActionSchema,
  notificationsListData,
  resendMessage,
  stopProgrammeAction,
  type ActionResult,
} from '~/notifications.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'notifications:list.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  const data = await notificationsListData(who, new URL(request.url).searchParams);
  return { ...data, requestId: newRequestId() };
}

export async function action({ request }: ActionFunctionArgs): Promise<ActionResult> {
  const who = await requireMutation(request, 'compliance');
  const form = Object.fromEntries([...(await request.formData()).entries()].filter(([k, v]) => k !== 'csrf' && typeof v === 'string'));
  const parsed = NotificationActionSchema.safeParse(form);
  if (!parsed.success) return { ok: false, code: 'notifications:actions.incomplete' };
  if (parsed.data.intent === 'resend') return resendMessage(request, who, parsed.data);
  return stopProgrammeAction(request, who, parsed.data.programmeId);
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();
type Say = ReturnType<typeof useSay>;

/** A stored reason, read back as a chain of messages ("follow-ups stopped: a message was not delivered: …"). */
const reasonText = (say: Say, parts: Parameters<Say>[0][] | null | undefined) => (parts ?? []).map((p) => say(p)).join(': ');

function RowActions({ row, requestId }: { row: Row; requestId: string }) {
  const { t } = useTranslation('notifications');
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
          <select name="locale" defaultValue={row.locale} aria-label={t('list.language_label')}>
            <option value="es">{t('common:languages.es')}</option>
            <option value="en">{t('common:languages.en')}</option>
          </select>{' '}
          <button type="submit" className="small">
            {t('list.send_again')}
          </button>{' '}
          <button type="button" className="secondary small" onClick={() => setOpen(false)}>
            {t('list.cancel')}
          </button>
        </Form>
      ) : (
        <button type="button" className="secondary small" onClick={() => setOpen(true)}>
          {t('list.resend')}
        </button>
      )}
      {row.programmeId && row.step === 0 ? (
        <Form method="post" className="inline">
          <CsrfInput />
          <input type="hidden" name="intent" value="stop" />
          <input type="hidden" name="programmeId" value={row.programmeId} />
          <button type="submit" className="secondary small" title={t('list.stop_followups_title')}>
            {t('list.stop_followups')}
          </button>
        </Form>
      ) : null}
    </div>
  );
}

export default function Notifications() {
  const { t } = useTranslation('notifications');
  const fmt = useFormat();
  const say = useSay();
  const data = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const location = useLocation();
  const { params, conversion: c } = data;
  const pct = (n: number, of: number) => (of > 0 ? fmt.percent(n / of, 0) : '—');

  const columns = useMemo(
    () => [
      col.accessor('createdAt', { header: t('list.columns.created'), cell: (x) => <TimeAgo iso={x.getValue()} /> }),
      col.accessor('address', {
        header: t('list.columns.customer'),
        enableSorting: false,
        cell: (x) => (
          <>
            {x.row.original.userId ? <Link to={`/users/${x.row.original.userId}`}>{x.getValue()}</Link> : x.getValue()}
            {x.row.original.externalUserId ? (
              <div className="muted">
                <code>{x.row.original.externalUserId}</code>
              </div>
            ) : null}
          </>
        ),
      }),
      col.accessor('kind', {
        header: t('list.columns.message'),
        cell: (x) => (
          <>
            {t(`kinds.${x.getValue()}`, { defaultValue: x.getValue() })}
            {x.row.original.step !== null && x.row.original.step > 0 ? (
              <span className="muted"> {t('list.step', { step: x.row.original.step })}</span>
            ) : null}
            <div className="muted">
              {t(`channels.${x.row.original.channel}`, { defaultValue: x.row.original.channel })} ·{' '}
              {t(`common:languages.${x.row.original.locale}`, { defaultValue: x.row.original.locale })} ·{' '}
              <Link to={`/notifications/preview?message=${x.row.original.id}`}>{t('list.preview')}</Link>
            </div>
          </>
        ),
      }),
      col.accessor('status', {
        header: t('list.columns.status'),
        cell: (x) => (
          <>
            <span className={`badge notif-${x.getValue()}`} data-status={x.getValue()} title={x.getValue()}>
              {t(`statuses.${x.getValue()}`)}
            </span>
            {x.row.original.reason ? (
              <div className={x.getValue() === 'failed' ? 'error' : 'muted'}>{reasonText(say, x.row.original.reason)}</div>
            ) : null}
            {x.getValue() === 'queued' && x.row.original.lastError ? (
              <div className="muted">{t('list.retrying', { reason: reasonText(say, x.row.original.lastError) })}</div>
            ) : null}
          </>
        ),
      }),
      col.accessor('attempts', { header: t('list.columns.attempts'), cell: (x) => fmt.number(x.getValue()) }),
      col.accessor('linkUrl', {
        header: t('list.columns.link'),
        enableSorting: false,
        cell: (x) => {
          const link = x.getValue();
          if (!link) return <span className="muted">—</span>;
          return link === HIDDEN_FOR_ROLE ? <span className="muted">{t('list.link_hidden')}</span> : <code className="small">{link}</code>;
        },
      }),
      col.accessor('sentAt', {
        header: t('list.columns.settled'),
        enableSorting: false,
        cell: (x) => <TimeAgo iso={x.getValue() ?? x.row.original.failedAt ?? x.row.original.cancelledAt} />,
      }),
      col.display({ id: 'actions', header: '', cell: (x) => <RowActions row={x.row.original} requestId={data.requestId} /> }),
    ],
    [data.requestId, t, fmt, say],
  );

  const sortable = new Set(['createdAt', 'status', 'kind', 'attempts']);
  const filtered = Boolean(params.status || params.kind || params.channel || params.q || params.from || params.to || params.userId);
  const toast = result ? [say(result), reasonText(say, result.reason)].filter(Boolean).join(': ') : null;

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>{t('list.heading')}</h1>
        <ExportCsvLink path="/notifications/export.csv" />
        <Link to="/notifications/preview" className="button secondary">
          {t('list.preview_templates')}
        </Link>
      </div>
      {result && toast ? <Toast tone={result.ok ? 'ok' : 'error'} text={toast} /> : null}

      <section className="card" aria-labelledby="conv-h">
        <h2 id="conv-h">{t('conversion.heading')}</h2>
        <Form method="get" className="inline">
          {[...new URLSearchParams(location.search).entries()]
            .filter(([k]) => k !== 'cfrom' && k !== 'cto')
            .map(([k, v], i) => (
              <input key={`${k}${i}`} type="hidden" name={k} value={v} />
            ))}
          <label htmlFor="cfrom" className="inline">
            {t('conversion.rejected_from')}
          </label>{' '}
          <input id="cfrom" name="cfrom" type="date" defaultValue={params.cfrom} />{' '}
          <label htmlFor="cto" className="inline">
            {t('conversion.to')}
          </label>{' '}
          <input id="cto" name="cto" type="date" defaultValue={params.cto} />{' '}
          <button type="submit" className="secondary small">
            {t('conversion.show')}
          </button>
        </Form>
        <table className="conversion" aria-label={t('conversion.table_label')}>
          <thead>
            <tr>
              <th>{t('conversion.rejected')}</th>
              <th>{t('conversion.reinvited')}</th>
              <th>{t('conversion.resubmitted')}</th>
              <th>{t('conversion.verified')}</th>
            </tr>
          </thead>
          <tbody>
            <tr data-testid="conversion">
              <td>{fmt.number(c.rejected)}</td>
              <td>
                {fmt.number(c.reinvited)} <span className="muted">{pct(c.reinvited, c.rejected)}</span>
              </td>
              <td>
                {fmt.number(c.resubmitted)} <span className="muted">{pct(c.resubmitted, c.reinvited)}</span>
              </td>
              <td>
                {fmt.number(c.verified)} <span className="muted">{pct(c.verified, c.resubmitted)}</span>
              </td>
            </tr>
          </tbody>
        </table>
        <p className="muted">
          {t('conversion.note', { active: t('conversion.active', { count: c.active }), stopped: fmt.number(c.stoppedByOperator) })}
        </p>
      </section>

      <nav className="chips" aria-label={t('list.status_filter_label')}>
        <Link to={withParams(location.search, { status: null })} className={`chip ${!params.status ? 'active' : ''}`}>
          {t('list.all')}
        </Link>
        {(['queued', 'sent', 'failed', 'cancelled'] as const).map((s) => (
          <Link key={s} to={withParams(location.search, { status: s })} className={`chip ${params.status === s ? 'active' : ''}`}>
            {t(`statuses.${s}`)} <strong>{fmt.number(data.counts[s])}</strong>
          </Link>
        ))}
      </nav>

      <Form method="get" className="filters card" role="search">
        {params.status ? <input type="hidden" name="status" value={params.status} /> : null}
        <input type="hidden" name="sort" value={params.sort} />
        <input type="hidden" name="dir" value={params.dir} />
        <div>
          <label htmlFor="q">{t('list.customer')}</label>
          <input id="q" name="q" type="search" defaultValue={params.q ?? ''} placeholder={t('list.customer_placeholder')} />
        </div>
        <div>
          <label htmlFor="kind">{t('list.message')}</label>
          <select id="kind" name="kind" defaultValue={params.kind ?? ''}>
            <option value="">{t('list.any')}</option>
            {(['kyc_link', 'kyc_retry', 'kyc_retry_reminder'] as const).map((k) => (
              <option key={k} value={k}>
                {t(`kinds.${k}`)}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="channel">{t('list.channel')}</label>
          <select id="channel" name="channel" defaultValue={params.channel ?? ''}>
            <option value="">{t('list.any')}</option>
            <option value="email">{t('channels.email')}</option>
            <option value="sms">{t('channels.sms')}</option>
          </select>
        </div>
        <div>
          <label htmlFor="from">{t('list.created_from')}</label>
          <input id="from" name="from" type="date" defaultValue={params.from} />
        </div>
        <div>
          <label htmlFor="to">{t('list.to')}</label>
          <input id="to" name="to" type="date" defaultValue={params.to} />
        </div>
        <div className="filter-buttons">
          <button type="submit">{t('list.apply')}</button> {filtered ? <Link to="/notifications">{t('list.clear')}</Link> : null}
        </div>
      </Form>

      <p className="muted" aria-live="polite">
        {t(filtered ? 'list.count_match' : 'list.count', { count: data.total })}
      </p>

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
                  {t('list.empty_filtered')} <Link to="/notifications">{t('list.clear_filters')}</Link>.
                </>
              ) : (
                t('list.empty')
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
  const { t } = useTranslation('notifications');
  const error = useRouteError();
  const text = routeErrorMessage(error, t('list.load_failed'), t);
  return (
    <main className="page">
      <h1>{t('list.heading')}</h1>
      <p className="error">{text}</p>
      <p>
        <Link to="/notifications">{t('list.try_again')}</Link>
      </p>
    </main>
  );
}
