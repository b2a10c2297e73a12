import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation, useSearchParams } from '@remix-run/react';
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { Toast } from '~/components/toast';
import { StateBadge } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { reviewCaseData, runCaseAction } from '~/review.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'review:case.page_title') }];

export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return reviewCaseData(who, params.userId!);
}

export async function action({ request, params }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await runCaseAction(request, who, params.userId!, who.form);
  return data(r.result, { status: r.status });
}

const STATUSES = ['open', 'waiting_customer', 'waiting_capa', 'resolved'] as const;
const REASONS = ['verified_by_capa', 'rejection_confirmed', 'customer_retried', 'customer_unreachable', 'duplicate', 'other'] as const;

export default function ReviewCase() {
  const { t } = useTranslation('review');
  const fmt = useFormat();
  const say = useSay();
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
  const openTasks = d.tasks.filter((x) => !x.doneAt);
  // Due dates are calendar days; "today" is the operator's day, in their time zone.
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: fmt.timeZone }).format(new Date(d.now));
  const when = (iso: string | null | undefined) => (iso ? fmt.dateTime(iso) : '—');
  // A due date in a toast is a calendar day too.
  const toast = result
    ? say({ ...result, values: result.values?.dueOn ? { ...result.values, dueOn: fmt.day(String(result.values.dueOn)) } : result.values })
    : null;
  const sla = d.sla;
  return (
    <main className="page">
      <p>
        <Link to="/review">{t('case.back')}</Link> · <Link to={`/users/${d.user.id}`}>{t('case.customer_page')}</Link>
      </p>
      <h1>
        {d.user.email} <StateBadge state={d.user.kycState} />
      </h1>
      {sp.get('flash') === 'claimed' && !result ? <Toast tone="ok" text={t('case.claimed')} /> : null}
      {result && toast ? <Toast tone={result.tone} text={toast} /> : null}

      <section className="card" aria-label={t('case.section')}>
        <p>
          <strong>{t('case.case_label')}</strong>{' '}
          <span data-testid="case-status">{d.caseStatus ? t(`statuses.${d.caseStatus}`) : t('case.no_case')}</span>
          {d.case?.status === 'resolved' && d.case.resolutionReason ? (
            <span data-testid="case-resolution">
              {' '}
              {t(d.case.resolutionComment ? 'case.resolution_comment' : 'case.resolution', {
                reason: t(`reasons.${d.case.resolutionReason}`, { defaultValue: d.case.resolutionReason }),
                comment: d.case.resolutionComment ?? '',
                when: when(d.case.resolvedAt),
              })}
            </span>
          ) : null}
        </p>
        <p>
          <strong>{t('case.assignee_label')}</strong> <span data-testid="assignee">{d.user.assigneeName ?? t('case.unassigned')}</span> ·{' '}
          <strong>{t('case.external_id_label')}</strong> {d.user.externalUserId} · <strong>{t('case.country_label')}</strong>{' '}
          {d.user.country ? t(`countries.${d.user.country}`) : '—'} · <strong>{t('case.state_since_label')}</strong>{' '}
          {when(d.user.kycStateChangedAt)}
          {d.user.kycStateReason ? ` (${d.user.kycStateReason})` : ''}
        </p>
        {sla ? (
          <p data-testid="sla" style={{ color: sla.breached ? 'var(--bad)' : undefined }}>
            {sla.waitingOn ? (
              <>
                <strong>{t(`case.sla_waiting.${sla.waitingOn}`)}</strong>{' '}
                {t(sla.breached ? 'case.sla_for_breached' : 'case.sla_for', {
                  duration: fmt.duration(sla.currentMs),
                  target: fmt.duration(sla.targetMs ?? 0),
                })}
              </>
            ) : (
              t('case.sla_stopped')
            )}{' '}
            <span className="muted">
              {t('case.sla_so_far', {
                customer: fmt.duration(sla.totals.customer),
                capa: fmt.duration(sla.totals.capa),
                us: fmt.duration(sla.totals.us),
              })}
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
                {mine ? t('case.assigned_to_you') : t('case.assign_to_me')}
              </button>
            </Form>
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="assign" />
              <label htmlFor="assignee" className="inline">
                {t('case.assign_to')}{' '}
              </label>
              <select id="assignee" name="assignee" defaultValue={d.user.assigneeId ?? ''}>
                <option value="">{t('case.nobody')}</option>
                {d.operators.map((o) => (
                  <option key={o.id} value={o.id}>
                    {t('case.operator_option', { name: o.name, email: o.email })}
                  </option>
                ))}
              </select>{' '}
              <button type="submit" className="secondary" disabled={busy}>
                {t('case.assign')}
              </button>
            </Form>
          </div>
        ) : null}
      </section>

      {d.canWork ? (
        <section className="card" aria-label={t('case.status_section')}>
          <h2>{t('case.status_heading')}</h2>
          <Form method="post">
            <CsrfInput />
            <input type="hidden" name="intent" value="status" />
            <label htmlFor="status">{t('case.status_label')}</label>
            <select id="status" name="status" value={status} onChange={(e) => setStatus(e.target.value)}>
              {STATUSES.map((k) => (
                <option key={k} value={k}>
                  {t(`statuses.${k}`)}
                </option>
              ))}
            </select>
            {status === 'resolved' ? (
              <>
                <label htmlFor="reason">{t('case.reason_label')}</label>
                <select id="reason" name="reason" defaultValue="" required>
                  <option value="" disabled>
                    {t('case.choose')}
                  </option>
                  {REASONS.map((k) => (
                    <option key={k} value={k}>
                      {t(`reasons.${k}`)}
                    </option>
                  ))}
                </select>
                <label htmlFor="comment">{t('case.comment_label')}</label>
                <input id="comment" name="comment" maxLength={1000} />
              </>
            ) : null}{' '}
            <button type="submit" disabled={busy}>
              {t('case.save_status')}
            </button>
          </Form>
        </section>
      ) : null}

      <section className="card" aria-label={t('case.tasks_heading')}>
        <h2>{t('case.tasks_heading')}</h2>
        {d.tasks.length === 0 ? <p className="muted">{t('case.no_tasks')}</p> : null}
        <ul>
          {d.tasks.map((task) => (
            <li key={task.id} style={!task.doneAt && task.dueOn < today ? { color: 'var(--bad)' } : undefined}>
              {task.doneAt ? <s>{task.title}</s> : task.title} {t('case.task_due', { date: fmt.day(task.dueOn) })}
              {!task.doneAt && task.dueOn < today ? t('case.overdue') : ''}
              {task.doneAt ? <span className="muted">{t('case.task_done_at', { when: when(task.doneAt) })}</span> : null}
              {!task.doneAt && d.canWork ? (
                <Form method="post" className="inline">
                  <CsrfInput />
                  <input type="hidden" name="intent" value="task_done" />
                  <input type="hidden" name="taskId" value={task.id} />{' '}
                  <button type="submit" className="secondary small" disabled={busy}>
                    {t('case.task_done')}
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
            <label htmlFor="title">{t('case.new_task')}</label>
            <input id="title" name="title" required maxLength={300} placeholder={t('case.new_task_placeholder')} />
            <label htmlFor="dueOn">{t('case.due')}</label>
            <input id="dueOn" name="dueOn" type="date" required defaultValue={today} />{' '}
            <button type="submit" disabled={busy}>
              {t('case.add_task')}
            </button>
          </Form>
        ) : null}
        {openTasks.length ? <p className="muted">{t('case.open_tasks', { count: openTasks.length })}</p> : null}
      </section>

      <section className="card" aria-label={t('case.notes_heading')}>
        <h2>{t('case.notes_heading')}</h2>
        {d.canWork ? (
          <Form method="post" ref={noteRef}>
            <CsrfInput />
            <input type="hidden" name="intent" value="note" />
            <label htmlFor="body">{t('case.add_note_label')}</label>
            <textarea id="body" name="body" rows={3} required maxLength={5000} style={{ width: '100%' }} />{' '}
            <button type="submit" disabled={busy}>
              {t('case.add_note')}
            </button>
          </Form>
        ) : null}
        {d.notes.length === 0 ? <p className="muted">{t('case.no_notes')}</p> : null}
        <ol className="notes" reversed>
          {d.notes.map((n) => (
            <li key={n.id} data-testid="note">
              <div className="muted">
                {n.author} · {when(n.at)}
              </div>
              <div style={{ whiteSpace: 'pre-wrap' }}>{n.body ?? <span className="muted">{t('case.note_hidden')}</span>}</div>
            </li>
          ))}
        </ol>
      </section>
    </main>
  );
}
