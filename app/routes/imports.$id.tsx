import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, Link, useActionData, useFetcher, useLoaderData, useNavigation, useRevalidator, useSearchParams } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useEffect, useRef } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ServerTable } from '~/components/server-table';
import { importAction, importDetailData } from '~/imports.server';

export const meta: MetaFunction = () => [{ title: 'Import — KYC Desk' }];

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

const EMAIL_WORDS: Record<Row['emailOutcome'], string> = {
  none: '',
  waiting: 'not yet',
  pending: 'sending',
  sent: 'sent',
  failed: 'failed',
  cancelled: 'not sent',
  missing: 'not sent',
};

function EmailCell({ r }: { r: Row }) {
  if (r.emailOutcome === 'none') return <span className="muted">—</span>;
  const why = r.emailOutcome === 'missing' ? 'no e-mail was queued for this link' : r.emailReason;
  return (
    <span data-testid="row-email" data-outcome={r.emailOutcome}>
      <span className={`badge email-${r.emailOutcome}`}>{EMAIL_WORDS[r.emailOutcome]}</span>
      {why ? (
        <span className={r.emailOutcome === 'pending' ? 'muted' : ''}> {r.emailOutcome === 'pending' ? `retrying: ${why}` : why}</span>
      ) : null}
    </span>
  );
}

const col = createColumnHelper<Row>();
const columns = [
  col.accessor('rowNo', { header: 'Row', cell: (c) => <span title={`line ${c.row.original.line}`}>{c.getValue()}</span> }),
  col.accessor('externalUserId', {
    header: 'externalUserId',
    cell: (c) =>
      c.getValue() ?? <span className="muted">{c.row.original.generatedId ? `${c.row.original.generatedId} (generated)` : '—'}</span>,
  }),
  col.accessor('email', { header: 'E-mail' }),
  col.accessor('type', { header: 'Type' }),
  col.accessor('country', { header: 'Country' }),
  col.accessor('sendLink', { header: 'Link', cell: (c) => (c.getValue() ? 'yes' : 'no') }),
  col.accessor('status', { header: 'Status', cell: (c) => <span className={`badge row-${c.getValue()}`}>{c.getValue()}</span> }),
  col.accessor('reason', { header: 'Reason', cell: (c) => c.getValue() ?? '' }),
  col.accessor('emailOutcome', { header: 'Link e-mail', cell: (c) => <EmailCell r={c.row.original} /> }),
  col.accessor('userId', { header: 'Customer', cell: (c) => (c.getValue() ? <Link to={`/users/${c.getValue()}`}>open</Link> : '') }),
];

const ACTIVE = new Set(['running', 'paused']);
const FILTER_WORDS: Record<string, string> = { email_failed: 'e-mail failed', email_pending: 'e-mail sending' };

function fmtEta(s: number | null): string {
  if (s === null) return '—';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function ProgressPanel({ p, status }: { p: Progress; status: string }) {
  const finished = p.done + p.failed + p.cancelled;
  const pct = p.total ? Math.round((finished / p.total) * 100) : 100;
  return (
    <div className="card" data-testid="progress">
      <div
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-label="Import progress"
        style={{ background: '#e8ecf2', borderRadius: 6, height: 14, overflow: 'hidden' }}
      >
        <div style={{ width: `${pct}%`, background: status === 'paused' ? 'var(--warn)' : 'var(--accent)', height: '100%' }} />
      </div>
      <p>
        <strong data-testid="done">{p.done}</strong> done · <strong data-testid="failed">{p.failed}</strong> failed ·{' '}
        <strong data-testid="remaining">{p.remaining}</strong> remaining
        {p.cancelled ? <> · {p.cancelled} cancelled</> : null} · of {p.total} ({pct}%)
        {ACTIVE.has(status) ? (
          <>
            {' '}
            · rate {p.ratePerSec ? `${p.ratePerSec.toFixed(1)} rows/s` : '—'} · ETA {status === 'paused' ? 'paused' : fmtEta(p.etaSeconds)}
          </>
        ) : null}
      </p>
    </div>
  );
}

/** The link e-mails of the import's rows: sent, failed, still going. */
function EmailSummary({ e, importId }: { e: Emails; importId: string }) {
  if (e.expected === 0 && e.sent + e.failed + e.pending + e.cancelled === 0) return null;
  return (
    <p data-testid="email-summary">
      Link e-mails: <strong data-testid="emails-sent">{e.sent}</strong> sent · <strong data-testid="emails-failed">{e.failed}</strong>{' '}
      {e.failed ? <Link to={`/imports/${importId}?rows=email_failed&page=1`}>failed</Link> : 'failed'}
      {e.pending ? (
        <>
          {' '}
          · <strong data-testid="emails-pending">{e.pending}</strong>{' '}
          <Link to={`/imports/${importId}?rows=email_pending&page=1`}>sending</Link>
        </>
      ) : null}
      {e.cancelled ? <> · {e.cancelled} not sent (cancelled)</> : null}
      {e.missing ? <> · {e.missing} not queued</> : null}
    </p>
  );
}

export default function ImportPage() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== 'idle';
  const [sp] = useSearchParams();
  const imp = d.import;

  // Live progress: a light JSON poll; the page (row table) reloads when the status changes.
  const poll = useFetcher<{ status: string; statusReason: string | null; progress: Progress; emails: LoaderData['emails'] }>();
  const revalidator = useRevalidator();
  const lastStatus = useRef<string>(imp.status);
  const active = ACTIVE.has(imp.status);
  // E-mails go out after their rows are done: keep watching (more slowly) until none is pending.
  const mailing = !active && (poll.data?.emails ?? d.emails)?.pending ? true : false;
  useEffect(() => {
    if (!active && !mailing) return;
    const t = setInterval(() => poll.load(`/imports/${imp.id}/progress`), active ? 1500 : 5000);
    return () => clearInterval(t);
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
        <Link to="/imports">← Imports</Link>
      </p>
      <h1>
        {imp.fileName}{' '}
        <span className={`badge import-${status}`} data-testid="import-status">
          {status}
        </span>
      </h1>
      {result?.message ? (
        <div className="toast ok" role="status">
          {result.message}
        </div>
      ) : null}
      {result?.error ? (
        <div className="toast error" role="alert">
          {result.error}
        </div>
      ) : null}
      {reason && status !== 'completed' ? (
        <div
          className={`toast ${status === 'paused' && imp.pauseKind === 'outage' ? 'error' : ''}`}
          role="status"
          data-testid="status-reason"
        >
          {reason}
        </div>
      ) : null}
      {emails && emails.failed > 0 && !ACTIVE.has(status) ? (
        <div className="toast error" role="alert" data-testid="email-warning">
          {status === 'completed' ? 'Completed, but ' : ''}
          {emails.failed} link e-mail{emails.failed === 1 ? '' : 's'} could not be delivered: the customers were created and have links, but
          were not told. <Link to={`/imports/${imp.id}?rows=email_failed&page=1`}>See why</Link>
        </div>
      ) : null}

      {imp.status === 'staged' ? (
        <section className="card" aria-label="Dry run">
          <h2>Dry run — nothing has been sent to Capa</h2>
          <p data-testid="summary">
            {imp.totalRows} rows: <strong>{imp.validRows} ready to import</strong>, {imp.invalidRows} with problems.
          </p>
          {imp.byReason.length ? (
            <ul>
              {imp.byReason.map((r) => (
                <li key={r.code}>
                  {r.label}: {r.n}
                </li>
              ))}
            </ul>
          ) : null}
          {imp.unknownColumns.length ? <p className="muted">Ignored columns (not ours): {imp.unknownColumns.join(', ')}</p> : null}
          {d.sameFile ? (
            <p className="toast">
              This exact file was uploaded before (<Link to={`/imports/${d.sameFile.id}`}>that import</Link>, {d.sameFile.status}). Rows
              already created show as “already exists here”.
            </p>
          ) : null}
          <p>
            {imp.validRows > 0 ? (
              act('commit', `Start import of ${imp.validRows} rows`)
            ) : (
              <span className="muted">No row can be imported. </span>
            )}
            {act('discard', 'Cancel', 'secondary')}
            {imp.invalidRows > 0 ? <a href={`/imports/${imp.id}/download?kind=errors`}>Download the rows with problems (CSV)</a> : null}
          </p>
        </section>
      ) : imp.status === 'discarded' ? (
        <p className="muted">This dry run was cancelled; nothing was created.</p>
      ) : (
        <>
          <ProgressPanel p={progress} status={status} />
          {emails ? <EmailSummary e={emails} importId={imp.id} /> : null}
          <p>
            {status === 'running' ? act('pause', 'Pause', 'secondary') : null}
            {status === 'paused' ? act('resume', 'Resume') : null}
            {ACTIVE.has(status)
              ? act('cancel', 'Cancel import', 'secondary', 'Cancel this import? Rows not started yet will not be created.')
              : null}
            {progress.failed > 0 && status !== 'cancelled'
              ? act('retry_failed', `Retry ${progress.failed} failed rows`, 'secondary')
              : null}
            <a href={`/imports/${imp.id}/download?kind=results`}>Download results (CSV)</a> ·{' '}
            <a href={`/imports/${imp.id}/download?kind=errors`} data-testid="download-errors">
              Download errors (CSV)
            </a>
          </p>
        </>
      )}

      {imp.status !== 'discarded' ? (
        <section aria-label="Rows">
          <p>
            Show:{' '}
            {(['all', 'problems', 'invalid', 'pending', 'done', 'failed', 'email_failed'] as const).map((f) => (
              <span key={f}>
                {d.filter === f ? (
                  <strong>{FILTER_WORDS[f] ?? f}</strong>
                ) : (
                  <Link to={link({ rows: f, page: 1 })}>{FILTER_WORDS[f] ?? f}</Link>
                )}{' '}
              </span>
            ))}
            {d.filter === 'email_pending' ? <strong>{FILTER_WORDS.email_pending} </strong> : null}
            <span className="muted">({d.rowsTotal} rows)</span>
          </p>
          <ServerTable rows={d.rows} columns={columns} page={d.page} pageSize={d.pageSize} pageCount={pages} />
          {pages > 1 ? (
            <p>
              {d.page > 1 ? <Link to={link({ page: d.page - 1 })}>← Previous</Link> : null} Page {d.page} of {pages}{' '}
              {d.page < pages ? <Link to={link({ page: d.page + 1 })}>Next →</Link> : null}
            </p>
          ) : null}
        </section>
      ) : null}
    </main>
  );
}
