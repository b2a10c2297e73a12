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
import {
  CASE_STATUSES,
  RESOLUTION_REASONS,
  type CaseNote,
  type CaseStatus,
  type CaseTask,
  type KycState,
  type ResolutionReason,
  type Role,
} from '../../db/schema.js';
import type { TimelineSource } from '../timeline-entry';
import { slaClock, type SlaClock, type SlaTargets } from './sla';

/**
 * The review feature's rules over the stored cases: SLA clocks on the queue and the case page,
 * who may take a case, what a note, task or resolution must carry, and the words of the case
 * history. Functions take the database first, like the repositories they wrap.
 */

/**
 * A case action that cannot be done (404: nothing to act on), as a message code
 * (`review:errors.<code>`) and its values; the page words it.
 */
export class CaseError extends Error {
  constructor(
    readonly code: string,
    readonly values: Record<string, string | number> = {},
    readonly status = 400,
  ) {
    super(code);
    this.name = 'CaseError';
  }
}

async function words<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof CaseNotFound) throw new CaseError(err.what === 'customer' ? 'no_customer' : 'no_task', {}, 404);
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
    if (!op) throw new CaseError('no_operator');
    if (op.disabled) throw new CaseError('assignee_disabled', { email: op.email });
    if (!CAN_WORK_CASES.includes(op.role)) throw new CaseError('assignee_viewer', { email: op.email });
    toLabel = op.email;
  }
  return words(setAssignee(db, userId, assigneeId, actor, toLabel));
}

export const NOTE_MAX = 5000;

export async function addNote(db: Executor, userId: string, actor: CaseActor, bodyRaw: string): Promise<CaseNote> {
  const body = bodyRaw.replace(/\r\n/g, '\n').trim();
  if (!body) throw new CaseError('note_empty');
  if (body.length > NOTE_MAX) throw new CaseError('note_too_long', { max: NOTE_MAX, length: body.length });
  return words(insertNote(db, userId, actor, body));
}

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

export async function addTask(db: Executor, userId: string, actor: CaseActor, input: { title: string; dueOn: string }): Promise<CaseTask> {
  const title = input.title.trim();
  if (!title) throw new CaseError('task_title_empty');
  if (title.length > 300) throw new CaseError('task_title_too_long', { max: 300 });
  if (
    !ISO_DAY.test(input.dueOn) ||
    Number.isNaN(Date.parse(`${input.dueOn}T00:00:00Z`)) ||
    new Date(`${input.dueOn}T00:00:00Z`).toISOString().slice(0, 10) !== input.dueOn
  ) {
    throw new CaseError('task_due_invalid');
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
    if (!input.reason) throw new CaseError('reason_missing');
    if (input.reason === 'other' && !comment) throw new CaseError('reason_other_unexplained');
  }
  if (comment && comment.length > 1000) throw new CaseError('comment_too_long', { max: 1000 });
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

/** What an entry says, as a catalogue key (`review:history.*`) and its values; a note's text is the note. */
type HistoryText = { code: string; values?: Record<string, string | number> };

export interface CaseTimelineEntry {
  /** Unique: `case-note:<id>` or `case-event:<id>`. */
  key: string;
  at: string;
  kind: CaseTimelineKind;
  title: HistoryText;
  detail: HistoryText | string | null;
  actor: string;
  /** A status change to `resolved`. */
  resolved?: boolean;
}

const say = (key: string, values?: Record<string, string | number>): HistoryText =>
  values ? { code: `review:history.${key}`, values } : { code: `review:history.${key}` };

/** Notes, tasks, assignment and status changes of a customer's case, newest first. */
export async function caseEventsForUser(db: Executor, userId: string): Promise<CaseTimelineEntry[]> {
  const { notes, events } = await caseHistoryForUser(db, userId);
  const out: CaseTimelineEntry[] = notes.map((n) => ({
    key: `case-note:${n.id}`,
    at: n.at,
    kind: 'note',
    title: say('note', { author: n.author }),
    detail: n.body,
    actor: n.author,
  }));
  for (const e of events) {
    const d = (e.detail ? JSON.parse(e.detail) : {}) as Record<string, string | number | null | undefined>;
    const base = { key: `case-event:${e.id}`, at: e.at, actor: e.actor };
    const state = typeof d.state === 'string' ? d.state : null;
    switch (e.kind) {
      case 'opened':
        out.push({ ...base, kind: 'status', title: say('opened'), detail: state ? say('in_state', { state }) : null });
        break;
      case 'reopened':
        out.push({ ...base, kind: 'status', title: say('reopened'), detail: state ? say('back_in_state', { state }) : null });
        break;
      case 'claimed':
        out.push({ ...base, kind: 'assignment', title: say('claimed', { who: String(d.toLabel ?? e.actor) }), detail: null });
        break;
      case 'assigned':
        out.push({ ...base, kind: 'assignment', title: say('assigned', { who: String(d.toLabel ?? d.to) }), detail: null });
        break;
      case 'unassigned':
        out.push({ ...base, kind: 'assignment', title: say('unassigned'), detail: null });
        break;
      case 'status': {
        const to = String(d.to);
        const known = (CASE_STATUSES as readonly string[]).includes(to);
        const reason = typeof d.reason === 'string' && (RESOLUTION_REASONS as readonly string[]).includes(d.reason) ? d.reason : null;
        const comment = typeof d.comment === 'string' && d.comment ? d.comment : null;
        out.push({
          ...base,
          kind: 'status',
          title: known ? say(`status.${to}`) : say('status_unknown', { status: to }),
          detail: reason ? say(comment ? 'reason_comment' : 'reason', { reason, comment: comment ?? '' }) : comment,
          resolved: to === 'resolved',
        });
        break;
      }
      case 'task_added':
        out.push({
          ...base,
          kind: 'task',
          title: say('task_added', { title: String(d.title ?? '') }),
          detail: say('due', { dueOn: String(d.dueOn ?? '') }),
        });
        break;
      case 'task_done':
        out.push({ ...base, kind: 'task', title: say('task_done', { title: String(d.title ?? '') }), detail: null });
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
    detail: e.kind === 'note' && !pii ? say('note_hidden') : e.detail,
    tone: e.resolved ? 'ok' : 'info',
    facts: [[say('by'), e.actor]],
  }));
};
