import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import {
  Form,
  Link,
  isRouteErrorResponse,
  useActionData,
  useFetcher,
  useLoaderData,
  useNavigation,
  useRevalidator,
  useRouteError,
  useSearchParams,
} from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useCallback, useEffect, useMemo, useRef } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import type { Message } from '~/action-result';
import { useSay } from '~/components/message';
import { ServerTable } from '~/components/server-table';
import { pageTitle } from '~/i18n';
import { importAction, importDetailData } from '~/imports.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'imports:page.page_title') }];

export async function loader({ request, params }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return importDetailData(params.id ?? '', new URL(request.url).searchParams);
}

export async function action({ request, params }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await importAction(request, who, params.id ?? '');
  if (r.ok) return { message: r.message, error: null };
  return data({ message: null, error: r.error }, { status: r.status });
}

type LoaderData = Awaited<ReturnType<typeof loader>>;
type Row = LoaderData['rows'][number];
type Progress = LoaderData['progress'];
type Emails = NonNullable<LoaderData['emails']>;

/** A row's reasons (a dry-run row may have several problems), in the reader's words. */
function useReasons(): (reasons: Message[]) => string {
  const say = useSay();
  return useCallback((reasons: Message[]) => reasons.map((m) => say(m)).join('; '), [say]);
}

function EmailCell({ r }: { r: Row }) {
  const { t } = useTranslation('imports');
  const say = useSay();
  if (r.emailOutcome === 'none') return <span className="muted">—</span>;
  // A reason with its cause ("gave up after 3 attempts: the mail server refused it …") reads as one sentence.
  const why = r.emailOutcome === 'missing' ? t('email.missing_reason') : r.emailReasons.map((m) => say(m)).join(': ');
  return (
    <span data-testid="row-email" data-outcome={r.emailOutcome}>
      <span className={`badge email-${r.emailOutcome}`}>{t(`email.outcomes.${r.emailOutcome}`)}</span>
      {why ? (
        <span className={r.emailOutcome === 'pending' ? 'muted' : ''}>
          {' '}
          {r.emailOutcome === 'pending' ? t('email.retrying', { why }) : why}
        </span>
      ) : null}
    </span>
  );
}

const col = createColumnHelper<Row>();

function useColumns() {
  const { t } = useTranslation('imports');
  const reasons = useReasons();
  return useMemo(
    () => [
      col.accessor('rowNo', {
        header: t('rows.columns.row'),
        cell: (c) => <span title={t('rows.line', { line: c.row.original.line })}>{c.getValue()}</span>,
      }),
      col.accessor('externalUserId', {
        header: t('csv.columns.externalUserId'),
        cell: (c) =>
          c.getValue() ?? (
            <span className="muted">{c.row.original.generatedId ? t('rows.generated', { id: c.row.original.generatedId }) : '—'}</span>
          ),
      }),
      col.accessor('email', { header: t('rows.columns.email') }),
      col.accessor('type', { header: t('rows.columns.type') }),
      col.accessor('country', { header: t('rows.columns.country') }),
      col.accessor('sendLink', { header: t('rows.columns.link'), cell: (c) => (c.getValue() ? t('csv.yes') : t('csv.no')) }),
      col.accessor('status', {
        header: t('rows.columns.status'),
        cell: (c) => (
          <span className={`badge row-${c.getValue()}`} title={c.getValue()}>
            {t(`row_statuses.${c.getValue()}`)}
          </span>
        ),
      }),
      col.accessor('reasons', { header: t('rows.columns.reason'), cell: (c) => reasons(c.getValue()) }),
      col.accessor('emailOutcome', { header: t('rows.columns.email_outcome'), cell: (c) => <EmailCell r={c.row.original} /> }),
      col.accessor('userId', {
        header: t('rows.columns.customer'),
        cell: (c) => (c.getValue() ? <Link to={`/users/${c.getValue()}`}>{t('rows.open')}</Link> : ''),
      }),
    ],
    [t, reasons],
  );
}

const ACTIVE = new Set(['running', 'paused']);
const FILTERS = ['all', 'problems', 'invalid', 'pending', 'done', 'failed', 'email_failed'] as const;

function ProgressPanel({ p, status }: { p: Progress; status: string }) {
  const { t } = useTranslation('imports');
  const fmt = useFormat();
  const finished = p.done + p.failed + p.cancelled;
  const pct = p.total ? Math.round((finished / p.total) * 100) : 100;
  return (
    <div className="card" data-testid="progress">
      <div
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-label={t('progress.label')}
        style={{ background: '#e8ecf2', borderRadius: 6, height: 14, overflow: 'hidden' }}
      >
        <div style={{ width: `${pct}%`, background: status === 'paused' ? 'var(--warn)' : 'var(--accent)', height: '100%' }} />
      </div>
      <p>
        <strong data-testid="done">{fmt.number(p.done)}</strong> {t('progress.done')} ·{' '}
        <strong data-testid="failed">{fmt.number(p.failed)}</strong> {t('progress.failed')} ·{' '}
        <strong data-testid="remaining">{fmt.number(p.remaining)}</strong> {t('progress.remaining')}
        {p.cancelled ? <> · {t('progress.cancelled', { count: p.cancelled })}</> : null} ·{' '}
        {t('progress.of', { total: p.total, percent: fmt.percent(pct / 100, 0) })}
        {ACTIVE.has(status) ? (
          <>
            {' '}
            ·{' '}
            {t('progress.rate', {
              rate: p.ratePerSec
                ? t('progress.rows_per_second', { rate: fmt.number(p.ratePerSec, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) })
                : '—',
            })}{' '}
            ·{' '}
            {t('progress.eta', {
              eta: status === 'paused' ? t('progress.paused') : p.etaSeconds === null ? '—' : fmt.duration(p.etaSeconds * 1000),
            })}
          </>
        ) : null}
      </p>
    </div>
  );
}

/** The link e-mails of the import's rows: sent, failed, still going. */
function EmailSummary({ e, importId }: { e: Emails; importId: string }) {
  const { t } = useTranslation('imports');
  const fmt = useFormat();
  if (e.expected === 0 && e.sent + e.failed + e.pending + e.cancelled === 0) return null;
  return (
    <p data-testid="email-summary">
      {t('email.summary')} <strong data-testid="emails-sent">{fmt.number(e.sent)}</strong> {t('email.sent')} ·{' '}
      <strong data-testid="emails-failed">{fmt.number(e.failed)}</strong>{' '}
      {e.failed ? <Link to={`/imports/${importId}?rows=email_failed&page=1`}>{t('email.failed')}</Link> : t('email.failed')}
      {e.pending ? (
        <>
          {' '}
          · <strong data-testid="emails-pending">{fmt.number(e.pending)}</strong>{' '}
          <Link to={`/imports/${importId}?rows=email_pending&page=1`}>{t('email.sending')}</Link>
        </>
      ) : null}
      {e.cancelled ? <> · {t('email.not_sent_cancelled', { count: e.cancelled })}</> : null}
      {e.missing ? <> · {t('email.not_queued', { count: e.missing })}</> : null}
    </p>
  );
}

export default function ImportPage() {
  const { t } = useTranslation('imports');
  const say = useSay();
  const fmt = useFormat();
  const columns = useColumns();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== 'idle';
  const [sp] = useSearchParams();
  const imp = d.import;

  // Live progress: a light JSON poll; the page (row table) reloads when the status changes.
  const poll = useFetcher<{ status: string; statusReason: Message | null; progress: Progress; emails: LoaderData['emails'] }>();
  const revalidator = useRevalidator();
  const lastStatus = useRef<string>(imp.status);
  const active = ACTIVE.has(imp.status);
  // E-mails go out after their rows are done: keep watching (more slowly) until none is pending.
  const mailing = !active && (poll.data?.emails ?? d.emails)?.pending ? true : false;
  useEffect(() => {
    if (!active && !mailing) return;
    const timer = setInterval(() => poll.load(`/imports/${imp.id}/progress`), active ? 1500 : 5000);
    return () => clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [active, mailing, imp.id]);
  const live = poll.data && (ACTIVE.has(imp.status) || mailing) ? poll.data : null;
  useEffect(() => {
    if (live && live.status !== lastStatus.current) {
      lastStatus.current = live.status;
      revalidator.revalidate();
    }
  }, [live, revalidator]);
  useEffect(() => {
    lastStatus.current = imp.status;
  }, [imp.status]);
  // The last e-mail went out (or failed): reload the rows so each shows its outcome.
  const lastPending = useRef<number>(d.emails?.pending ?? 0);
  useEffect(() => {
    const pending = live?.emails?.pending;
    if (pending === undefined) return;
    if (pending === 0 && lastPending.current > 0) revalidator.revalidate();
    lastPending.current = pending;
  }, [live, revalidator]);
  const status = live?.status ?? imp.status;
  const reason = live ? live.statusReason : imp.statusReason;
  const progress = live?.progress ?? d.progress;
  const emails = live?.emails ?? d.emails;

  const pages = Math.max(1, Math.ceil(d.rowsTotal / d.pageSize));
  const link = (over: Record<string, string | number>) => {
    const next = new URLSearchParams(sp);
    for (const [k, v] of Object.entries(over)) next.set(k, String(v));
    return `?${next.toString()}`;
  };
  const column = (c: string) => (/^\(\d+\)$/.test(c) ? t('dry_run.blank_column', { n: c.slice(1, -1) }) : c);

  const act = (intent: string, label: string, cls = '', confirm?: string) => (
    <Form
      method="post"
      className="inline"
      style={{ display: 'inline-block', marginRight: 8 }}
      onSubmit={(e) => {
        if (confirm && !window.confirm(confirm)) e.preventDefault();
      }}
    >
      <CsrfInput />
      <input type="hidden" name="intent" value={intent} />
      <button type="submit" className={cls} disabled={busy}>
        {label}
      </button>
    </Form>
  );

  return (
    <main className="page">
      <p>
        <Link to="/imports">{t('page.back')}</Link>
      </p>
      <h1>
        {imp.fileName}{' '}
        <span className={`badge import-${status}`} data-testid="import-status" data-status={status} title={status}>
          {t(`statuses.${status}`)}
        </span>
      </h1>
      {result?.message ? (
        <div className="toast ok" role="status">
          {say(result.message)}
        </div>
      ) : null}
      {result?.error ? (
        <div className="toast error" role="alert">
          {say(result.error)}
        </div>
      ) : null}
      {reason && status !== 'completed' ? (
        <div
          className={`toast ${status === 'paused' && imp.pauseKind === 'outage' ? 'error' : ''}`}
          role="status"
          data-testid="status-reason"
        >
          {say(reason)}
        </div>
      ) : null}
      {emails && emails.failed > 0 && !ACTIVE.has(status) ? (
        <div className="toast error" role="alert" data-testid="email-warning">
          {t(status === 'completed' ? 'email.warning_completed' : 'email.warning', { count: emails.failed })}{' '}
          <Link to={`/imports/${imp.id}?rows=email_failed&page=1`}>{t('email.see_why')}</Link>
        </div>
      ) : null}

      {imp.status === 'staged' ? (
        <section className="card" aria-label={t('dry_run.label')}>
          <h2>{t('dry_run.heading')}</h2>
          <p data-testid="summary">
            {t('dry_run.rows', { count: imp.totalRows })}: <strong>{t('dry_run.ready', { count: imp.validRows })}</strong>,{' '}
            {t('dry_run.problems', { count: imp.invalidRows })}.
          </p>
          {imp.byReason.length ? (
            <ul>
              {imp.byReason.map((r) => (
                <li key={r.code}>
                  {t(`reason_labels.${r.code}`, { defaultValue: r.code })}: {fmt.number(r.n)}
                </li>
              ))}
            </ul>
          ) : null}
          {imp.unknownColumns.length ? (
            <p className="muted">{t('dry_run.ignored', { columns: imp.unknownColumns.map(column).join(', ') })}</p>
          ) : null}
          {d.sameFile ? (
            <p className="toast">
              {t('dry_run.same_file_before')}
              <Link to={`/imports/${d.sameFile.id}`}>{t('dry_run.same_file_link')}</Link>
              {t('dry_run.same_file_after', { status: t(`statuses.${d.sameFile.status}`) })}
            </p>
          ) : null}
          <div className="actions">
            {imp.validRows > 0 ? (
              act('commit', t('dry_run.start', { count: imp.validRows }))
            ) : (
              <span className="muted">{t('dry_run.nothing_to_import')} </span>
            )}
            {act('discard', t('dry_run.cancel'), 'secondary')}
            {imp.invalidRows > 0 ? <a href={`/imports/${imp.id}/download?kind=errors`}>{t('dry_run.download_problems')}</a> : null}
          </div>
        </section>
      ) : imp.status === 'discarded' ? (
        <p className="muted">{t('page.discarded')}</p>
      ) : (
        <>
          <ProgressPanel p={progress} status={status} />
          {emails ? <EmailSummary e={emails} importId={imp.id} /> : null}
          {/* A form may not sit inside a paragraph. */}
          <div className="actions">
            {status === 'running' ? act('pause', t('run.pause'), 'secondary') : null}
            {status === 'paused' ? act('resume', t('run.resume')) : null}
            {ACTIVE.has(status) ? act('cancel', t('run.cancel'), 'secondary', t('run.cancel_confirm')) : null}
            {progress.failed > 0 && status !== 'cancelled'
              ? act('retry_failed', t('run.retry', { count: progress.failed }), 'secondary')
              : null}
            <a href={`/imports/${imp.id}/download?kind=results`}>{t('run.download_results')}</a> ·{' '}
            <a href={`/imports/${imp.id}/download?kind=errors`} data-testid="download-errors">
              {t('run.download_errors')}
            </a>
          </div>
        </>
      )}

      {imp.status !== 'discarded' ? (
        <section aria-label={t('rows.label')}>
          <p>
            {t('rows.show')}{' '}
            {FILTERS.map((f) => (
              <span key={f}>
                {d.filter === f ? (
                  <strong>{t(`rows.filters.${f}`)}</strong>
                ) : (
                  <Link to={link({ rows: f, page: 1 })}>{t(`rows.filters.${f}`)}</Link>
                )}{' '}
              </span>
            ))}
            {d.filter === 'email_pending' ? <strong>{t('rows.filters.email_pending')} </strong> : null}
            <span className="muted">{t('rows.count', { count: d.rowsTotal })}</span>
          </p>
          <ServerTable rows={d.rows} columns={columns} page={d.page} pageSize={d.pageSize} pageCount={pages} />
          {pages > 1 ? (
            <p>
              {d.page > 1 ? <Link to={link({ page: d.page - 1 })}>{t('common:pager.previous')}</Link> : null}{' '}
              {t('common:pager.page_of', { page: d.page, total: pages })}{' '}
              {d.page < pages ? <Link to={link({ page: d.page + 1 })}>{t('common:pager.next')}</Link> : null}
            </p>
          ) : null}
        </section>
      ) : null}
    </main>
  );
}

export function ErrorBoundary() {
  const { t } = useTranslation('imports');
  const error = useRouteError();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  return (
    <main className="page">
      <p>
        <Link to="/imports">{t('page.back')}</Link>
      </p>
      <h1>{status === 404 ? t('page.not_found_title') : status === 403 ? t('common:errors.title_403') : t('page.failed_title')}</h1>
      <p>{status === 404 ? t('page.not_found') : status === 403 ? t('common:errors.advice_403') : t('common:errors.advice_generic')}</p>
    </main>
  );
}
