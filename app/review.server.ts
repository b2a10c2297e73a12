import { redirect } from '@remix-run/node';
import { z } from 'zod';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { claimNext, type CaseActor, type QueueFilters } from '../db/repositories/cases.js';
import { listOperators } from '../db/repositories/operators.js';
import { findUserById } from '../db/repositories/users.js';
import { CASE_STATUSES, KYC_STATES, RESOLUTION_REASONS, type KycState } from '../db/schema.js';
import type { Env } from '../lib/config.js';
import type { ActionResult } from './action-result';
import { auditAction, canSeePii, roleAtLeast, type SignedIn } from './auth.server';
import { pageCount, pageNumber } from './list-params.server';
import { maskEmail } from './pii';
import {
  addNote,
  addTask,
  assignCase,
  CAN_WORK_CASES,
  CaseError,
  caseView,
  completeTask,
  reviewQueue,
  setCaseStatus,
  type ReviewQueueFilters,
} from './review/cases.server';
import { slaTargetsFromHours, type SlaTargets } from './review/sla';
import { services } from './services.server';

/** Review queue and case work for the /review routes. */

export const slaTargets = (env: Env): SlaTargets =>
  slaTargetsFromHours({ customer: env.REVIEW_SLA_CUSTOMER_HOURS, capa: env.REVIEW_SLA_CAPA_HOURS, us: env.REVIEW_SLA_US_HOURS });

const actorOf = (who: SignedIn): CaseActor & { id: string } => ({ id: who.operator.id, label: who.operator.email });

// ------------------------------------------------------------------ queue

export interface QueueParams extends ReviewQueueFilters {
  page: number;
}

/** URL → filters. Unknown values are dropped (a shared link always opens). */
export function parseQueueParams(sp: URLSearchParams): QueueParams {
  const states = sp
    .getAll('state')
    .flatMap((s) => s.split(','))
    .filter((s): s is KycState => (KYC_STATES as readonly string[]).includes(s));
  const country = sp.get('country');
  const on = (k: string) => sp.get(k) === '1' || sp.get(k) === 'on';
  return {
    mine: on('mine'),
    unassigned: on('unassigned'),
    breached: on('breached'),
    states,
    country: country === 'MX' || country === 'DO' ? country : null,
    page: pageNumber(sp.get('page')),
  };
}

export const QUEUE_PAGE_SIZE = 50;

export async function reviewQueueData(who: SignedIn, sp: URLSearchParams, now = Date.now()) {
  const { db, env } = await services();
  const params = parseQueueParams(sp);
  const targets = slaTargets(env);
  const q = await reviewQueue(db, {
    filters: params,
    operatorId: who.operator.id,
    now,
    targets,
    page: params.page - 1,
    pageSize: QUEUE_PAGE_SIZE,
  });
  const pii = canSeePii(who.operator.role);
  return {
    rows: q.rows.map((r) => ({ ...r, email: pii ? r.email : maskEmail(r.email) })),
    total: q.total,
    truncated: q.truncated,
    breachedCount: q.breachedCount,
    params,
    pageCount: pageCount(q.total, QUEUE_PAGE_SIZE),
    targets,
    now,
    canWork: roleAtLeast(who.operator.role, 'compliance'),
  };
}

/** A toast: tone and a message code (`review:…`) with its values; the page words it. */
export type ActionMessage = ActionResult;

const say = (tone: ActionMessage['tone'], key: string, values?: ActionMessage['values']): ActionMessage => ({
  tone,
  code: `review:${key}`,
  ...(values ? { values } : {}),
});

/** Claims the oldest unassigned case for the signed-in operator and opens it. */
export async function claimNextCase(request: Request, who: SignedIn, form?: FormData): Promise<Response | ActionMessage> {
  const { db } = await services();
  const filters: Pick<QueueFilters, 'states' | 'country'> = {};
  const country = form?.get('country');
  if (country === 'MX' || country === 'DO') filters.country = country;
  const r = await claimNext(db, actorOf(who), filters);
  if (!r) return say('info', 'messages.nothing_to_claim');
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.caseClaim,
    targetType: 'user',
    targetId: r.userId,
    outcome: 'ok',
    detail: r.lostRaces ? { lostRaces: r.lostRaces } : null,
  });
  return redirect(`/review/${r.userId}?flash=claimed`);
}

// ------------------------------------------------------------------ one case

export async function reviewCaseData(who: SignedIn, userId: string, now = Date.now()) {
  const { db, env } = await services();
  const v = await caseView(db, userId, now, slaTargets(env));
  if (!v) throw new Response('review:errors.no_customer_page', { status: 404 });
  const pii = canSeePii(who.operator.role);
  const operators = (await listOperators(db))
    .filter((o) => !o.disabled && CAN_WORK_CASES.includes(o.role))
    .map((o) => ({ id: o.id, name: o.name, email: o.email }));
  return {
    user: { ...v.user, email: pii ? v.user.email : maskEmail(v.user.email) },
    case: v.case,
    caseStatus: v.caseStatus,
    sla: v.sla,
    // Notes are free text and may carry personal data: viewers see that a note exists, not its text.
    notes: v.notes.map((n) => ({ ...n, body: pii ? n.body : null })),
    tasks: v.tasks,
    operators,
    canWork: roleAtLeast(who.operator.role, 'compliance'),
    me: who.operator.id,
    now,
  };
}

const id = z.string().trim().max(100);
export const CaseActionSchema = z.discriminatedUnion('intent', [
  z.object({ intent: z.literal('assign'), assignee: z.union([z.literal('me'), z.literal(''), id]) }),
  z.object({ intent: z.literal('note'), body: z.string({ required_error: 'review:errors.note_empty' }) }),
  z.object({
    intent: z.literal('task'),
    title: z.string({ required_error: 'review:errors.task_title_empty' }),
    dueOn: z.string({ required_error: 'review:errors.task_due_missing' }),
  }),
  z.object({ intent: z.literal('task_done'), taskId: z.coerce.number().int().positive() }),
  z.object({
    intent: z.literal('status'),
    status: z.enum(CASE_STATUSES, { errorMap: () => ({ message: 'review:errors.status_missing' }) }),
    reason: z.preprocess(
      (v) => (v === '' ? undefined : v),
      z.enum(RESOLUTION_REASONS, { errorMap: () => ({ message: 'review:errors.reason_missing' }) }).optional(),
    ),
    comment: z.string().max(1000, 'review:errors.comment_too_long').optional(),
  }),
]);

export type CaseActionResult = ActionMessage & { intent?: string; field?: string };

/**
 * One case action. Bad input is a message for the operator (status 400), a missing customer a
 * 404; every attempt that reaches the database is audited, refused ones included.
 */
export async function runCaseAction(
  request: Request,
  who: SignedIn,
  userId: string,
  form: FormData,
): Promise<{ status: number; result: CaseActionResult }> {
  const { db } = await services();
  const values: Record<string, string> = {};
  for (const [k, v] of form.entries()) if (typeof v === 'string' && k !== 'csrf') values[k] = v;
  const parsed = CaseActionSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // Schema messages are catalogue keys; an issue zod words itself (a malformed id) is a form problem.
    const code =
      issue.path[0] === 'intent'
        ? 'review:errors.unknown_action'
        : /^review:/.test(issue.message)
          ? issue.message
          : 'review:errors.invalid_form';
    const limit = code === 'review:errors.comment_too_long' ? { max: 1000 } : undefined;
    return {
      status: 400,
      result: {
        tone: 'error',
        code,
        ...(limit ? { values: limit } : {}),
        intent: values.intent,
        field: String(issue.path[0] ?? ''),
      },
    };
  }
  const a = parsed.data;
  const actor = actorOf(who);
  const audit = (action: string, outcome: 'ok' | 'error', detail: Record<string, unknown> | null) =>
    auditAction(request, who, { action, targetType: 'user', targetId: userId, outcome, detail });
  if (!(await findUserById(db, userId))) throw new Response('review:errors.no_customer', { status: 404 });

  const ACTION = {
    assign: AUDIT_ACTIONS.caseAssign,
    note: AUDIT_ACTIONS.caseNote,
    task: AUDIT_ACTIONS.caseTaskAdd,
    task_done: AUDIT_ACTIONS.caseTaskDone,
    status: a.intent === 'status' && a.status === 'resolved' ? AUDIT_ACTIONS.caseResolve : AUDIT_ACTIONS.caseStatus,
  }[a.intent];
  try {
    switch (a.intent) {
      case 'assign': {
        const to = a.assignee === 'me' ? who.operator.id : a.assignee || null;
        const r = await assignCase(db, userId, to, actor);
        await audit(to ? AUDIT_ACTIONS.caseAssign : AUDIT_ACTIONS.caseUnassign, 'ok', { from: r.from, to: r.to, changed: r.changed });
        return {
          status: 200,
          result: {
            ...say(
              r.changed ? 'ok' : 'info',
              !r.changed
                ? 'messages.assign_unchanged'
                : to === who.operator.id
                  ? 'messages.yours'
                  : to
                    ? 'messages.assigned'
                    : 'messages.unassigned',
            ),
            intent: a.intent,
          },
        };
      }
      case 'note': {
        const n = await addNote(db, userId, actor, a.body);
        // The note text stays in the case; the audit log records that (and how long) it was written.
        await audit(AUDIT_ACTIONS.caseNote, 'ok', { noteId: n.id, length: n.body.length });
        return { status: 200, result: { ...say('ok', 'messages.note_added'), intent: a.intent } };
      }
      case 'task': {
        const t = await addTask(db, userId, actor, { title: a.title, dueOn: a.dueOn });
        await audit(AUDIT_ACTIONS.caseTaskAdd, 'ok', { taskId: t.id, dueOn: t.dueOn });
        return { status: 200, result: { ...say('ok', 'messages.task_added', { dueOn: t.dueOn }), intent: a.intent } };
      }
      case 'task_done': {
        const r = await completeTask(db, userId, a.taskId, actor);
        await audit(AUDIT_ACTIONS.caseTaskDone, 'ok', { taskId: a.taskId, changed: r.changed });
        return {
          status: 200,
          result: { ...say(r.changed ? 'ok' : 'info', r.changed ? 'messages.task_done' : 'messages.task_already_done'), intent: a.intent },
        };
      }
      case 'status': {
        const r = await setCaseStatus(db, userId, actor, { status: a.status, reason: a.reason ?? null, comment: a.comment ?? null });
        await audit(ACTION, 'ok', { from: r.from, to: r.to, changed: r.changed, ...(a.status === 'resolved' ? { reason: a.reason } : {}) });
        return {
          status: 200,
          result: {
            ...say(
              r.changed ? 'ok' : 'info',
              !r.changed ? 'messages.status_unchanged' : a.status === 'resolved' ? 'messages.resolved' : 'messages.status_updated',
            ),
            intent: a.intent,
          },
        };
      }
    }
  } catch (err) {
    if (err instanceof CaseError) {
      if (err.status === 404) throw new Response(`review:errors.${err.code}`, { status: 404 });
      await audit(ACTION, 'error', { reason: err.code });
      return { status: 400, result: { ...say('error', `errors.${err.code}`, err.values), intent: a.intent } };
    }
    throw err;
  }
}
