import {
  caseHistoryForUser,
  caseRecord,
  CaseNotFound,
  completeTask as completeTaskRow,
  insertNote,
  insertTask,
  reviewQueueRows,
  setAssignee,
  updateCaseStatus,
  type CaseActor,
  type QueueFilters,
} from '../../db/repositories/cases.js';
import type { Executor } from '../../db/client.js';
import { findOperatorById } from '../../db/repositories/operators.js';
import type { CaseNote, CaseStatus, CaseTask, KycState, ResolutionReason, Role } from '../../db/schema.js';
import type { TimelineSource } from '../timeline-entry';
import { slaClock, type SlaClock, type SlaTargets } from './sla';

/**
 * The review feature's rules over the stored cases: SLA clocks on the queue and the case page,
 * who may take a case, what a note, task or resolution must carry, and the words of the case
 * history. Functions take the database first, like the repositories they wrap.
 */

/** A case action that cannot be done, in words for the operator (404: nothing to act on). */
export class CaseError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'CaseError';
  }
}

async function words<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof CaseNotFound)
      throw new CaseError(err.what === 'customer' ? 'No customer with this id.' : 'No such task on this case.', 404);
    throw err;
  }
}

export const CAN_WORK_CASES: readonly Role[] = ['compliance', 'admin'];

// ------------------------------------------------------------------ the queue

export interface ReviewQueueFilters extends QueueFilters {
  breached?: boolean;
}

export interface QueueRow {
  userId: string;
  externalUserId: string;
  email: string;
  alias: string | null;
  country: 'MX' | 'DO' | null;
  kycState: KycState;
  kycStateChangedAt: string;
  assigneeId: string | null;
  assigneeName: string | null;
  caseStatus: CaseStatus;
  queuedAt: string;
  openTasks: number;
  nextDue: string | null;
  sla: SlaClock;
}

/**
 * The review queue, oldest first, with SLA clocks. The SLA needs each case's history, so the
 * (bounded) set of matching cases is read and the `breached` filter and paging apply after.
 */
export async function reviewQueue(
  db: Executor,
  opts: { filters: ReviewQueueFilters; operatorId: string | null; now: number; targets: SlaTargets; page?: number; pageSize?: number },
): Promise<{ rows: QueueRow[]; total: number; truncated: boolean; breachedCount: number }> {
  const { breached, ...filters } = opts.filters;
  const found = await reviewQueueRows(db, { filters, operatorId: opts.operatorId });
  const { states, statuses } = found.history;
  let rows: QueueRow[] = found.rows.map((r) => {
    // An implicit case (no row, or a stale resolved one) is open since the customer entered the state.
    const live = r.caseStatus !== null && r.caseStatus !== 'resolved';
    const caseStatus: CaseStatus = live ? r.caseStatus! : 'open';
    const sla = slaClock(
      {
        openedAt: r.queuedAt,
        currentState: r.kycState,
        currentStateAt: r.kycStateChangedAt,
        stateChanges: states.get(r.userId) ?? [],
        statusChanges: live ? (statuses.get(r.userId) ?? []) : [],
      },
      opts.now,
      opts.targets,
    );
    const t = found.openTasks.get(r.userId);
    return { ...r, caseStatus, openTasks: live ? (t?.n ?? 0) : 0, nextDue: live ? (t?.next ?? null) : null, sla };
  });
  const breachedCount = rows.filter((r) => r.sla.breached).length;
  if (breached) rows = rows.filter((r) => r.sla.breached);
  const pageSize = opts.pageSize ?? 50;
  const page = Math.max(0, opts.page ?? 0);
  return { rows: rows.slice(page * pageSize, page * pageSize + pageSize), total: rows.length, truncated: found.truncated, breachedCount };
}

// ------------------------------------------------------------------ case work

/** Assigns (or, with null, unassigns) a case. Only active operators who can work cases qualify. */
export async function assignCase(
  db: Executor,
  userId: string,
  assigneeId: string | null,
  actor: CaseActor,
): Promise<{ from: string | null; to: string | null; changed: boolean }> {
  let toLabel: string | null = null;
  if (assigneeId) {
    const op = await findOperatorById(db, assigneeId);
    if (!op) throw new CaseError('That operator does not exist.');
    if (op.disabled) throw new CaseError(`${op.email} is disabled and cannot take cases.`);
    if (!CAN_WORK_CASES.includes(op.role))
      throw new CaseError(`${op.email} is a viewer and cannot work cases; choose a compliance operator or an admin.`);
    toLabel = op.email;
  }
  return words(setAssignee(db, userId, assigneeId, actor, toLabel));
}

export const NOTE_MAX = 5000;

export async function addNote(db: Executor, userId: string, actor: CaseActor, bodyRaw: string): Promise<CaseNote> {
  const body = bodyRaw.replace(/\r\n/g, '\n').trim();
  if (!body) throw new CaseError('Write the note before saving it.');
  if (body.length > NOTE_MAX) throw new CaseError(`Notes are limited to ${NOTE_MAX} characters (this one has ${body.length}).`);
  return words(insertNote(db, userId, actor, body));
}

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

export async function addTask(db: Executor, userId: string, actor: CaseActor, input: { title: string; dueOn: string }): Promise<CaseTask> {
  const title = input.title.trim();
  if (!title) throw new CaseError('Describe the follow-up task.');
  if (title.length > 300) throw new CaseError('Keep the task title under 300 characters.');
  if (
    !ISO_DAY.test(input.dueOn) ||
    Number.isNaN(Date.parse(`${input.dueOn}T00:00:00Z`)) ||
    new Date(`${input.dueOn}T00:00:00Z`).toISOString().slice(0, 10) !== input.dueOn
  ) {
    throw new CaseError('Give the due date as a real date (YYYY-MM-DD).');
  }
  return words(insertTask(db, userId, actor, { title, dueOn: input.dueOn }));
}

/** Marks a task done (once: a second click is a no-op, not a second history entry). */
export async function completeTask(
  db: Executor,
  userId: string,
  taskId: number,
  actor: CaseActor,
): Promise<{ changed: boolean; task: CaseTask }> {
  return words(completeTaskRow(db, userId, taskId, actor));
}

export async function setCaseStatus(
  db: Executor,
  userId: string,
  actor: CaseActor,
  input: { status: CaseStatus; reason?: ResolutionReason | null; comment?: string | null },
): Promise<{ from: CaseStatus; to: CaseStatus; changed: boolean }> {
  const comment = input.comment?.trim() || null;
  if (input.status === 'resolved') {
    if (!input.reason) throw new CaseError('Choose a resolution reason to resolve the case.');
    if (input.reason === 'other' && !comment) throw new CaseError('Explain the resolution when the reason is “other”.');
  }
  if (comment && comment.length > 1000) throw new CaseError('Keep the resolution comment under 1000 characters.');
  return words(updateCaseStatus(db, userId, actor, { status: input.status, reason: input.reason ?? null, comment }));
}

// ------------------------------------------------------------------ case page

export async function caseView(db: Executor, userId: string, now: number, targets: SlaTargets) {
  const r = await caseRecord(db, userId);
  if (!r) return null;
  const c = r.case;
  const live = !!c && c.status !== 'resolved';
  const queued = r.user.inQueue;
  const openedAt = live ? c!.openedAt : r.user.kycStateChangedAt;
  const sla =
    queued || live
      ? slaClock(
          {
            openedAt,
            currentState: r.user.kycState,
            currentStateAt: r.user.kycStateChangedAt,
            stateChanges: r.stateChanges,
            statusChanges: live ? r.statusChanges : [],
          },
          now,
          targets,
        )
      : null;
  return {
    user: r.user,
    case: c,
    caseStatus: (live ? c!.status : queued ? 'open' : (c?.status ?? null)) as CaseStatus | null,
    sla,
    notes: r.notes,
    tasks: r.tasks,
  };
}

// ------------------------------------------------------------------ case history

export type CaseTimelineKind = 'note' | 'task' | 'assignment' | 'status';

export interface CaseTimelineEntry {
  /** Unique: `case-note:<id>` or `case-event:<id>`. */
  key: string;
  at: string;
  kind: CaseTimelineKind;
  title: string;
  detail: string | null;
  actor: string;
}

const STATUS_LABEL: Record<CaseStatus, string> = {
  open: 'open',
  waiting_customer: 'waiting on customer',
  waiting_capa: 'waiting on Capa',
  resolved: 'resolved',
};
export const REASON_LABEL: Record<ResolutionReason, string> = {
  verified_by_capa: 'Capa verified the customer',
  rejection_confirmed: 'Rejection confirmed',
  customer_retried: 'Customer verified again',
  customer_unreachable: 'Customer unreachable',
  duplicate: 'Duplicate customer',
  other: 'Other',
};

/** Notes, tasks, assignment and status changes of a customer's case, newest first. */
export async function caseEventsForUser(db: Executor, userId: string): Promise<CaseTimelineEntry[]> {
  const { notes, events } = await caseHistoryForUser(db, userId);
  const out: CaseTimelineEntry[] = notes.map((n) => ({
    key: `case-note:${n.id}`,
    at: n.at,
    kind: 'note',
    title: `Note by ${n.author}`,
    detail: n.body,
    actor: n.author,
  }));
  for (const e of events) {
    const d = (e.detail ? JSON.parse(e.detail) : {}) as Record<string, string | number | null | undefined>;
    const base = { key: `case-event:${e.id}`, at: e.at, actor: e.actor };
    switch (e.kind) {
      case 'opened':
        out.push({ ...base, kind: 'status', title: 'Review case opened', detail: d.state ? `customer in ${d.state}` : null });
        break;
      case 'reopened':
        out.push({ ...base, kind: 'status', title: 'Review case reopened', detail: d.state ? `customer back in ${d.state}` : null });
        break;
      case 'claimed':
        out.push({ ...base, kind: 'assignment', title: `Case claimed by ${d.toLabel ?? e.actor}`, detail: null });
        break;
      case 'assigned':
        out.push({ ...base, kind: 'assignment', title: `Case assigned to ${d.toLabel ?? d.to}`, detail: null });
        break;
      case 'unassigned':
        out.push({ ...base, kind: 'assignment', title: 'Case unassigned', detail: null });
        break;
      case 'status': {
        const to = d.to as CaseStatus;
        const reason = d.reason ? (REASON_LABEL[d.reason as ResolutionReason] ?? String(d.reason)) : null;
        out.push({
          ...base,
          kind: 'status',
          title: `Case ${STATUS_LABEL[to] ?? to}`,
          detail: [reason, d.comment].filter(Boolean).join(' — ') || null,
        });
        break;
      }
      case 'task_added':
        out.push({ ...base, kind: 'task', title: `Follow-up task: ${d.title}`, detail: `due ${d.dueOn}` });
        break;
      case 'task_done':
        out.push({ ...base, kind: 'task', title: `Task done: ${d.title}`, detail: null });
        break;
    }
  }
  return out.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : a.key < b.key ? 1 : -1));
}

/** The case's notes, tasks, assignments and status changes on the customer's timeline. */
export const casesTimelineSource: TimelineSource = async ({ db, user, canSeePii: pii }) => {
  const entries = await caseEventsForUser(db, user.id);
  return entries.map((e) => ({
    key: e.key,
    at: e.at,
    kind: `case.${e.kind}`,
    title: e.title,
    detail: e.kind === 'note' && !pii ? '(note hidden for your role)' : e.detail,
    tone: e.kind === 'status' && /resolved/.test(e.title) ? 'ok' : 'info',
    facts: [['by', e.actor]],
  }));
};
