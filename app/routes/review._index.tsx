import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ExportCsvLink } from '~/components/export-link';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { Toast } from '~/components/toast';
import { StateBadge } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { claimNextCase, reviewQueueData } from '~/review.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'review:queue.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return reviewQueueData(who, new URL(request.url).searchParams);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await claimNextCase(request, who, who.form);
  if (r instanceof Response) return r;
  return data(r, { status: 200 });
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();

const FILTER_STATES = ['REVIEW_NEEDED', 'REJECTED', 'LINK_ISSUED', 'IN_PROGRESS', 'VERIFIED', 'NOT_STARTED'] as const;

function SlaCell({ sla }: { sla: Row['sla'] }) {
  const { t } = useTranslation('review');
  const fmt = useFormat();
  if (!sla.waitingOn) return <span className="muted">—</span>;
  const share = sla.targetMs ? sla.currentMs / sla.targetMs : 0;
  const colour = sla.breached ? 'var(--bad)' : share > 0.75 ? 'var(--warn)' : 'var(--ok)';
  const who = t(`who.${sla.waitingOn}`);
  return (
    <span
      data-breached={sla.breached ? 'true' : 'false'}
      style={{ color: colour, fontWeight: sla.breached ? 700 : 400 }}
      title={t('queue.sla_title', {
        target: fmt.duration(sla.targetMs ?? 0),
        customer: fmt.duration(sla.totals.customer),
        capa: fmt.duration(sla.totals.capa),
        us: fmt.duration(sla.totals.us),
      })}
    >
      {t(sla.breached ? 'queue.sla_breached' : 'queue.sla_cell', { who, duration: fmt.duration(sla.currentMs) })}
    </span>
  );
}

export default function ReviewQueue() {
  const { t } = useTranslation('review');
  const fmt = useFormat();
  const say = useSay();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const location = useLocation();
  const navigation = useNavigation();
  const p = d.params;
  const columns = useMemo(
    () => [
      col.accessor('queuedAt', {
        header: t('queue.columns.queued_at'),
        cell: (c) => <time dateTime={c.getValue()}>{fmt.dateTime(c.getValue())}</time>,
      }),
      col.accessor('email', {
        header: t('queue.columns.customer'),
        cell: (c) => (
          <>
            <Link to={`/review/${c.row.original.userId}`}>{c.getValue()}</Link>
            <div className="muted">
              {c.row.original.externalUserId}
              {c.row.original.alias ? ` · ${c.row.original.alias}` : ''}
            </div>
          </>
        ),
      }),
      col.accessor('kycState', { header: t('queue.columns.state'), cell: (c) => <StateBadge state={c.getValue()} /> }),
      col.accessor('country', {
        header: t('queue.columns.country'),
        cell: (c) => {
          const v = c.getValue();
          return v ? <span title={v}>{t(`countries.${v}`)}</span> : '—';
        },
      }),
      col.accessor('caseStatus', { header: t('queue.columns.case'), cell: (c) => t(`statuses.${c.getValue()}`) }),
      col.display({ id: 'sla', header: t('queue.columns.waiting_on'), cell: (c) => <SlaCell sla={c.row.original.sla} /> }),
      col.accessor('assigneeName', {
        header: t('queue.columns.assignee'),
        cell: (c) => c.getValue() ?? <span className="muted">{t('queue.unassigned_cell')}</span>,
      }),
      col.accessor('openTasks', {
        header: t('queue.columns.tasks'),
        cell: (c) => {
          const n = c.getValue();
          if (!n) return <span className="muted">—</span>;
          const open = t('queue.tasks_open', { count: n });
          const next = c.row.original.nextDue;
          return next ? t('queue.tasks_next', { open, date: fmt.day(next) }) : open;
        },
      }),
    ],
    [t, fmt],
  );
  const chip = (label: string, key: 'mine' | 'unassigned' | 'breached') => (
    <Link
      to={withParams(location.search, { [key]: p[key] ? null : '1' })}
      className={`chip ${p[key] ? 'active' : ''}`}
      aria-pressed={p[key] ? 'true' : 'false'}
    >
      {label}
    </Link>
  );
  return (
    <main className="page wide">
      <div className="row-between">
        <h1>{t('queue.heading')}</h1>
        <ExportCsvLink path="/review/export.csv" />
        {d.canWork ? (
          <Form method="post">
            <CsrfInput />
            <button type="submit" disabled={navigation.state === 'submitting'}>
              {t('queue.claim_next')}
            </button>
          </Form>
        ) : null}
      </div>
      {result ? <Toast tone={result.tone} text={say(result)} /> : null}
      <p className="muted">
        {t('queue.intro', {
          customer: fmt.duration(d.targets.customerMs),
          capa: fmt.duration(d.targets.capaMs),
          us: fmt.duration(d.targets.usMs),
        })}
      </p>
      <nav className="chips" aria-label={t('queue.filters_label')}>
        {chip(t('queue.mine'), 'mine')}
        {chip(t('queue.unassigned'), 'unassigned')}
        {chip(t('queue.breached', { count: d.breachedCount }), 'breached')}
      </nav>
      <Form method="get" className="filters card" role="search">
        {p.mine ? <input type="hidden" name="mine" value="1" /> : null}
        {p.unassigned ? <input type="hidden" name="unassigned" value="1" /> : null}
        {p.breached ? <input type="hidden" name="breached" value="1" /> : null}
        <label htmlFor="state">{t('queue.state')}</label>
        <select id="state" name="state" defaultValue={p.states?.[0] ?? ''}>
          <option value="">{t('queue.any')}</option>
          {FILTER_STATES.map((s) => (
            <option key={s} value={s}>
              {t('common:state_with_code', { state: t(`common:states.${s}`), code: s })}
            </option>
          ))}
        </select>
        <label htmlFor="country">{t('queue.country')}</label>
        <select id="country" name="country" defaultValue={p.country ?? ''}>
          <option value="">{t('queue.any')}</option>
          <option value="MX">{t('countries.MX')}</option>
          <option value="DO">{t('countries.DO')}</option>
        </select>{' '}
        <button type="submit" className="secondary">
          {t('queue.apply')}
        </button>{' '}
        <Link to="/review">{t('queue.clear')}</Link>
      </Form>
      <p className="muted" aria-live="polite">
        {t('queue.count', { count: d.total })}
        {d.truncated ? t('queue.truncated', { limit: fmt.number(2000) }) : ''}
      </p>
      <ServerTable
        rows={d.rows}
        columns={columns}
        pageCount={d.pageCount}
        rowProps={(r) => ({ 'data-user-id': r.userId, style: r.sla.breached ? { background: '#fdf0ef' } : undefined })}
        className="review-table"
        empty={
          <div className="card empty">
            {t('queue.empty')}{' '}
            {p.mine || p.unassigned || p.breached || p.states?.length || p.country ? (
              <Link to="/review">{t('queue.clear_filters')}</Link>
            ) : (
              t('queue.queue_empty')
            )}
          </div>
        }
      />
      <Pager page={p.page} pageCount={d.pageCount} />
    </main>
  );
}
