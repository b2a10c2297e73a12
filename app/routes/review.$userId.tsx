import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation, useSearchParams } from '@remix-run/react';
import { useEffect, useRef, useState } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { Toast } from '~/components/toast';
import { StateBadge } from '~/components/ui';
import { reviewCaseData, runCaseAction } from '~/review.server';

export const meta: MetaFunction = () => [{ title: 'Review case — KYC Desk' }];

export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return reviewCaseData(who, params.userId!);
}

export async function action({ request, params }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await runCaseAction(request, who, params.userId!, who.form);
  return data(r.result, { status: r.status });
}

const WHO: Record<string, string> = { customer: 'the customer', capa: 'Capa', us: 'us' };
const STATUS: Record<string, string> = {
  open: 'Open',
  waiting_customer: 'Waiting on customer',
  waiting_capa: 'Waiting on Capa',
  resolved: 'Resolved',
};
const REASONS: Record<string, string> = {
  verified_by_capa: 'Capa verified the customer',
  rejection_confirmed: 'Rejection confirmed',
  customer_retried: 'Customer verified again',
  customer_unreachable: 'Customer unreachable',
  duplicate: 'Duplicate customer',
  other: 'Other (explain)',
};

function formatDuration(ms: number): string {
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const when = (iso: string | null | undefined) => (iso ? iso.slice(0, 16).replace('T', ' ') : '—');

export default function ReviewCase() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const [sp] = useSearchParams();
  const busy = navigation.state === 'submitting';
  const noteRef = useRef<HTMLFormElement>(null);
  const taskRef = useRef<HTMLFormElement>(null);
  const [status, setStatus] = useState<string>(d.caseStatus ?? 'open');
  useEffect(() => {
    if (result?.tone === 'ok' && result.intent === 'note') noteRef.current?.reset();
    if (result?.tone === 'ok' && result.intent === 'task') taskRef.current?.reset();
  }, [result]);
  const mine = d.user.assigneeId === d.me;
  const openTasks = d.tasks.filter((t) => !t.doneAt);
  const today = new Date(d.now).toISOString().slice(0, 10);
  return (
    <main className="page">
      <p>
        <Link to="/review">← Review queue</Link> · <Link to={`/users/${d.user.id}`}>Customer page</Link>
      </p>
      <h1>
        {d.user.email} <StateBadge state={d.user.kycState} />
      </h1>
      {sp.get('flash') === 'claimed' && !result ? <Toast tone="ok" text="Case claimed: it is yours." /> : null}
      {result ? <Toast tone={result.tone} text={result.text} /> : null}

      <section className="card" aria-label="Case">
        <p>
          <strong>Case:</strong>{' '}
          <span data-testid="case-status">{d.caseStatus ? STATUS[d.caseStatus] : 'No case (not in the review queue)'}</span>
          {d.case?.status === 'resolved' && d.case.resolutionReason ? (
            <span data-testid="case-resolution">
              {' '}
              — {REASONS[d.case.resolutionReason] ?? d.case.resolutionReason}
              {d.case.resolutionComment ? `: ${d.case.resolutionComment}` : ''} ({when(d.case.resolvedAt)})
            </span>
          ) : null}
        </p>
        <p>
          <strong>Assignee:</strong> <span data-testid="assignee">{d.user.assigneeName ?? 'unassigned'}</span> ·{' '}
          <strong>External id:</strong> {d.user.externalUserId} · <strong>Country:</strong> {d.user.country ?? '—'} ·{' '}
          <strong>State since:</strong> {when(d.user.kycStateChangedAt)}
          {d.user.kycStateReason ? ` (${d.user.kycStateReason})` : ''}
        </p>
        {d.sla ? (
          <p data-testid="sla" style={{ color: d.sla.breached ? 'var(--bad)' : undefined }}>
            {d.sla.waitingOn ? (
              <>
                <strong>Waiting on {WHO[d.sla.waitingOn]}</strong> for {formatDuration(d.sla.currentMs)} (target{' '}
                {formatDuration(d.sla.targetMs ?? 0)}){d.sla.breached ? ' — breached' : ''}.
              </>
            ) : (
              <>Clock stopped.</>
            )}{' '}
            <span className="muted">
              So far: customer {formatDuration(d.sla.totals.customer)}, Capa {formatDuration(d.sla.totals.capa)}, us{' '}
              {formatDuration(d.sla.totals.us)}.
            </span>
          </p>
        ) : null}
        {d.canWork ? (
          <div className="row-between">
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="assign" />
              <input type="hidden" name="assignee" value="me" />
              <button type="submit" disabled={busy || mine}>
                {mine ? 'Assigned to you' : 'Assign to me'}
              </button>
            </Form>
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="assign" />
              <label htmlFor="assignee" className="inline">
                Assign to{' '}
              </label>
              <select id="assignee" name="assignee" defaultValue={d.user.assigneeId ?? ''}>
                <option value="">(nobody)</option>
                {d.operators.map((o) => (
                  <option key={o.id} value={o.id}>
                    {o.name} ({o.email})
                  </option>
                ))}
              </select>{' '}
              <button type="submit" className="secondary" disabled={busy}>
                Assign
              </button>
            </Form>
          </div>
        ) : null}
      </section>

      {d.canWork ? (
        <section className="card" aria-label="Case status">
          <h2>Status</h2>
          <Form method="post">
            <CsrfInput />
            <input type="hidden" name="intent" value="status" />
            <label htmlFor="status">Case status</label>
            <select id="status" name="status" value={status} onChange={(e) => setStatus(e.target.value)}>
              {Object.entries(STATUS).map(([k, v]) => (
                <option key={k} value={k}>
                  {v}
                </option>
              ))}
            </select>
            {status === 'resolved' ? (
              <>
                <label htmlFor="reason">Resolution reason</label>
                <select id="reason" name="reason" defaultValue="" required>
                  <option value="" disabled>
                    Choose…
                  </option>
                  {Object.entries(REASONS).map(([k, v]) => (
                    <option key={k} value={k}>
                      {v}
                    </option>
                  ))}
                </select>
                <label htmlFor="comment">Comment</label>
                <input id="comment" name="comment" maxLength={1000} />
              </>
            ) : null}{' '}
            <button type="submit" disabled={busy}>
              Save status
            </button>
          </Form>
        </section>
      ) : null}

      <section className="card" aria-label="Follow-up tasks">
        <h2>Follow-up tasks</h2>
        {d.tasks.length === 0 ? <p className="muted">No tasks.</p> : null}
        <ul>
          {d.tasks.map((t) => (
            <li key={t.id} style={!t.doneAt && t.dueOn < today ? { color: 'var(--bad)' } : undefined}>
              {t.doneAt ? <s>{t.title}</s> : t.title} — due {t.dueOn}
              {!t.doneAt && t.dueOn < today ? ' (overdue)' : ''}
              {t.doneAt ? <span className="muted"> · done {when(t.doneAt)}</span> : null}
              {!t.doneAt && d.canWork ? (
                <Form method="post" className="inline">
                  <CsrfInput />
                  <input type="hidden" name="intent" value="task_done" />
                  <input type="hidden" name="taskId" value={t.id} />{' '}
                  <button type="submit" className="secondary small" disabled={busy}>
                    Done
                  </button>
                </Form>
              ) : null}
            </li>
          ))}
        </ul>
        {d.canWork ? (
          <Form method="post" ref={taskRef}>
            <CsrfInput />
            <input type="hidden" name="intent" value="task" />
            <label htmlFor="title">New task</label>
            <input id="title" name="title" required maxLength={300} placeholder="Call the customer about the selfie" />
            <label htmlFor="dueOn">Due</label>
            <input id="dueOn" name="dueOn" type="date" required defaultValue={today} />{' '}
            <button type="submit" disabled={busy}>
              Add task
            </button>
          </Form>
        ) : null}
        {openTasks.length ? <p className="muted">{openTasks.length} open.</p> : null}
      </section>

      <section className="card" aria-label="Notes">
        <h2>Notes</h2>
        {d.canWork ? (
          <Form method="post" ref={noteRef}>
            <CsrfInput />
            <input type="hidden" name="intent" value="note" />
            <label htmlFor="body">Add a note (notes cannot be edited or deleted)</label>
            <textarea id="body" name="body" rows={3} required maxLength={5000} style={{ width: '100%' }} />{' '}
            <button type="submit" disabled={busy}>
              Add note
            </button>
          </Form>
        ) : null}
        {d.notes.length === 0 ? <p className="muted">No notes yet.</p> : null}
        <ol className="notes" reversed>
          {d.notes.map((n) => (
            <li key={n.id} data-testid="note">
              <div className="muted">
                {n.author} · {when(n.at)}
              </div>
              <div style={{ whiteSpace: 'pre-wrap' }}>{n.body}</div>
            </li>
          ))}
        </ol>
      </section>
    </main>
  );
}
