import { sql } from 'kysely';
import {
  CASE_STATUSES,
  RESOLUTION_REASONS,
  type CaseEventKind,
  type CaseNote,
  type CaseStatus,
  type CaseTask,
  type KycState,
  type ResolutionReason,
  type ReviewCase,
  type Role,
} from '../schema.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

/**
 * Manual-review follow-up: the review queue, SLA clocks split by who we wait on, and case work
 * (assignment, claim-next, append-only notes, follow-up tasks, case status and resolution).
 *
 * Queue membership is derived, so customers that reached REVIEW_NEEDED/REJECTED before anyone
 * touched them are in the queue without a case row:
 *   - a case row that is not resolved, or
 *   - kyc_state REVIEW_NEEDED/REJECTED with no case row, or with a case resolved before the
 *     customer (re-)entered that state.
 * The first case action creates the row (ensureCase), reopening a stale resolved one.
 *
 * Audit entries are written by the caller after these functions commit: appendAudit retries on a
 * unique violation, which PostgreSQL cannot do inside an already-failed transaction.
 */

export const QUEUE_STATES: readonly KycState[] = ['REVIEW_NEEDED', 'REJECTED'];
export const WAITING_ON = ['customer', 'capa', 'us'] as const;
export type WaitingOn = (typeof WAITING_ON)[number];

export interface CaseActor {
  id: string | null;
  /** What the history shows (the operator's e-mail). */
  label: string;
}

export class CaseError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
    this.name = 'CaseError';
  }
}

// ------------------------------------------------------------------ SLA clocks (pure)

export interface SlaTargets {
  customerMs: number;
  capaMs: number;
  usMs: number;
}

export const slaTargetsFromHours = (h: { customer: number; capa: number; us: number }): SlaTargets => ({
  customerMs: h.customer * 3_600_000,
  capaMs: h.capa * 3_600_000,
  usMs: h.us * 3_600_000,
});

export interface SlaInput {
  /** When the current case began (the customer entered review, or an operator opened it). */
  openedAt: string;
  currentState: KycState;
  currentStateAt: string;
  /** The customer's state history (any order; all of it — the state at openedAt is read from it). */
  stateChanges: Array<{ at: string; toState: KycState }>;
  /** Case status changes since openedAt (the case is `open` at openedAt). */
  statusChanges: Array<{ at: string; status: CaseStatus }>;
}

export interface SlaClock {
  waitingOn: WaitingOn | null;
  /** When the current wait began. */
  since: string | null;
  currentMs: number;
  targetMs: number | null;
  breached: boolean;
  /** Time attributed to each party since the case opened. */
  totals: Record<WaitingOn, number>;
}

/**
 * Who we are waiting on at one moment. The customer's state speaks first (a link sent but not
 * started waits on the customer; a submission without a result waits on Capa); in a final state
 * the operator's "waiting on …" status counts only if it was set after the state last changed —
 * an answer that arrived since means the case is back with us.
 */
export function waitingOnAt(state: KycState, stateAt: string, status: CaseStatus, statusAt: string): WaitingOn | null {
  if (status === 'resolved') return null;
  if (state === 'NOT_STARTED' || state === 'LINK_ISSUED') return 'customer';
  if (state === 'IN_PROGRESS') return 'capa';
  if (status === 'waiting_customer' && statusAt >= stateAt) return 'customer';
  if (status === 'waiting_capa' && statusAt >= stateAt) return 'capa';
  return 'us';
}

export function slaClock(input: SlaInput, now: number, targets: SlaTargets): SlaClock {
  const states = [...input.stateChanges].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  // Rows written straight into a state (imports, fixtures) have no history: the current state counts from currentStateAt.
  const last = states[states.length - 1];
  if (!last || last.toState !== input.currentState) states.push({ at: input.currentStateAt, toState: input.currentState });
  const statuses = input.statusChanges.filter((s) => s.at >= input.openedAt).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));

  const points = [...new Set([input.openedAt, ...states.map((s) => s.at).filter((a) => a > input.openedAt), ...statuses.map((s) => s.at)])]
    .filter((a) => Date.parse(a) <= now)
    .sort();
  const stateAt = (t: string) => {
    let cur: { at: string; toState: KycState } = { at: input.openedAt, toState: states[0]?.toState ?? input.currentState };
    for (const s of states) if (s.at <= t) cur = s;
    return cur;
  };
  const statusAt = (t: string) => {
    let cur: { at: string; status: CaseStatus } = { at: input.openedAt, status: 'open' };
    for (const s of statuses) if (s.at <= t) cur = s;
    return cur;
  };

  const totals: Record<WaitingOn, number> = { customer: 0, capa: 0, us: 0 };
  let current: WaitingOn | null = null;
  let since: string | null = null;
  for (let i = 0; i < points.length; i++) {
    const t = points[i]!;
    const st = stateAt(t);
    const cs = statusAt(t);
    const party = waitingOnAt(st.toState, st.at, cs.status, cs.at);
    const end = i + 1 < points.length ? Date.parse(points[i + 1]!) : now;
    if (party) totals[party] += Math.max(0, end - Date.parse(t));
    if (party !== current) {
      current = party;
      since = party ? t : null;
    }
  }
  const targetMs = current ? { customer: targets.customerMs, capa: targets.capaMs, us: targets.usMs }[current] : null;
  const currentMs = since ? Math.max(0, now - Date.parse(since)) : 0;
  return { waitingOn: current, since, currentMs, targetMs, breached: targetMs !== null && currentMs > targetMs, totals };
}

// ------------------------------------------------------------------ the queue

export interface QueueFilters {
  mine?: boolean;
  unassigned?: boolean;
  breached?: boolean;
  states?: KycState[];
  country?: 'MX' | 'DO' | null;
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

/** Reading more than this many open cases at once means the queue itself is the incident. */
export const QUEUE_CAP = 2000;

const inQueue = sql<boolean>`(
  (review_cases.status is not null and review_cases.status <> 'resolved')
  or (users.kyc_state in ('REVIEW_NEEDED', 'REJECTED')
      and (review_cases.user_id is null or review_cases.resolved_at < users.kyc_state_changed_at)))`;
const openCase = sql`(review_cases.status is not null and review_cases.status <> 'resolved')`;
const queuedAtExpr = sql<string>`case when ${openCase} then review_cases.opened_at else users.kyc_state_changed_at end`;

function queueBase(db: Executor, f: QueueFilters, operatorId: string | null) {
  let q = db
    .selectFrom('users')
    .leftJoin('reviewCases', 'reviewCases.userId', 'users.id')
    .where(inQueue);
  if (f.mine && operatorId) q = q.where('users.assigneeId', '=', operatorId);
  if (f.unassigned) q = q.where('users.assigneeId', 'is', null);
  if (f.states?.length) q = q.where('users.kycState', 'in', f.states);
  if (f.country) q = q.where('users.country', '=', f.country);
  return q;
}

async function historyFor(db: Executor, userIds: string[]) {
  const states = new Map<string, Array<{ at: string; toState: KycState }>>();
  const statuses = new Map<string, Array<{ at: string; status: CaseStatus }>>();
  for (let i = 0; i < userIds.length; i += 500) {
    const ids = userIds.slice(i, i + 500);
    const [sc, ev] = await Promise.all([
      db.selectFrom('stateChanges').select(['userId', 'at', 'toState']).where('userId', 'in', ids).orderBy('id', 'asc').execute(),
      db.selectFrom('caseEvents').select(['userId', 'at', 'detail']).where('userId', 'in', ids).where('kind', 'in', ['status', 'reopened']).orderBy('id', 'asc').execute(),
    ]);
    for (const r of sc) (states.get(r.userId) ?? states.set(r.userId, []).get(r.userId)!).push({ at: r.at, toState: r.toState });
    for (const r of ev) {
      const to = (r.detail ? (JSON.parse(r.detail) as { to?: CaseStatus }).to : undefined) ?? 'open';
      (statuses.get(r.userId) ?? statuses.set(r.userId, []).get(r.userId)!).push({ at: r.at, status: to });
    }
  }
  return { states, statuses };
}

/**
 * The review queue, oldest first, with SLA clocks. The SLA needs each case's history, so the
 * (bounded) set of matching cases is read and the `breached` filter and paging apply after.
 */
export async function reviewQueue(
  db: Executor,
  opts: { filters: QueueFilters; operatorId: string | null; now: number; targets: SlaTargets; page?: number; pageSize?: number },
): Promise<{ rows: QueueRow[]; total: number; truncated: boolean; breachedCount: number }> {
  const raw = await queueBase(db, opts.filters, opts.operatorId)
    .leftJoin('operators', 'operators.id', 'users.assigneeId')
    .select([
      'users.id as userId', 'users.externalUserId', 'users.email', 'users.alias', 'users.country', 'users.kycState', 'users.kycStateChangedAt',
      'users.assigneeId', 'operators.name as assigneeName', 'reviewCases.status as caseStatus', 'reviewCases.resolvedAt',
    ])
    .select(queuedAtExpr.as('queuedAt'))
    .orderBy('queuedAt', 'asc')
    .orderBy('users.id', 'asc')
    .limit(QUEUE_CAP + 1)
    .execute();
  const truncated = raw.length > QUEUE_CAP;
  const base = raw.slice(0, QUEUE_CAP);
  const ids = base.map((r) => r.userId);
  const { states, statuses } = await historyFor(db, ids);
  const tasks = new Map<string, { n: number; next: string | null }>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('caseTasks')
      .select(['userId'])
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('dueOn').as('next')])
      .where('userId', 'in', ids.slice(i, i + 500))
      .where('doneAt', 'is', null)
      .groupBy('userId')
      .execute();
    for (const r of rows) tasks.set(r.userId, { n: Number(r.n), next: (r.next as string | null) ?? null });
  }
  let rows: QueueRow[] = base.map((r) => {
    // An implicit case (no row, or a stale resolved one) is open since the customer entered the state.
    const live = r.caseStatus !== null && r.caseStatus !== 'resolved';
    const caseStatus: CaseStatus = live ? (r.caseStatus as CaseStatus) : 'open';
    const sla = slaClock(
      { openedAt: r.queuedAt, currentState: r.kycState, currentStateAt: r.kycStateChangedAt, stateChanges: states.get(r.userId) ?? [], statusChanges: live ? statuses.get(r.userId) ?? [] : [] },
      opts.now,
      opts.targets,
    );
    const t = tasks.get(r.userId);
    return {
      userId: r.userId, externalUserId: r.externalUserId, email: r.email, alias: r.alias, country: r.country, kycState: r.kycState,
      kycStateChangedAt: r.kycStateChangedAt, assigneeId: r.assigneeId, assigneeName: r.assigneeName ?? null, caseStatus, queuedAt: r.queuedAt,
      openTasks: live ? t?.n ?? 0 : 0, nextDue: live ? t?.next ?? null : null, sla,
    };
  });
  const breachedCount = rows.filter((r) => r.sla.breached).length;
  if (opts.filters.breached) rows = rows.filter((r) => r.sla.breached);
  const pageSize = opts.pageSize ?? 50;
  const page = Math.max(0, opts.page ?? 0);
  return { rows: rows.slice(page * pageSize, page * pageSize + pageSize), total: rows.length, truncated, breachedCount };
}

// ------------------------------------------------------------------ case rows

async function insertEvent(db: Executor, userId: string, actor: CaseActor, kind: CaseEventKind, detail: Record<string, unknown> | null, at = nowIso()) {
  await db.insertInto('caseEvents').values({ userId, at, actorId: actor.id, actor: actor.label, kind, detail: detail ? JSON.stringify(detail) : null }).execute();
}

/**
 * The customer's case, created on first use. A case resolved before the customer entered
 * REVIEW_NEEDED/REJECTED again is reopened (a new wait starts when the state changed).
 */
export async function ensureCase(db: Executor, userId: string, actor: CaseActor): Promise<ReviewCase> {
  const user = await db.selectFrom('users').select(['kycState', 'kycStateChangedAt']).where('id', '=', userId).executeTakeFirst();
  if (!user) throw new CaseError('No customer with this id.', 404);
  const now = nowIso();
  const inState = QUEUE_STATES.includes(user.kycState);
  const openedAt = inState ? user.kycStateChangedAt : now;
  const existing = await db.selectFrom('reviewCases').selectAll().where('userId', '=', userId).executeTakeFirst();
  if (!existing) {
    const row: ReviewCase = { userId, status: 'open', resolutionReason: null, resolutionComment: null, openedAt, statusChangedAt: openedAt, resolvedAt: null, resolvedBy: null, updatedAt: now };
    const r = await db.insertInto('reviewCases').values(row).onConflict((oc) => oc.column('userId').doNothing()).executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) {
      await insertEvent(db, userId, actor, 'opened', { openedAt, state: user.kycState }, now);
      return row;
    }
    return db.selectFrom('reviewCases').selectAll().where('userId', '=', userId).executeTakeFirstOrThrow();
  }
  if (existing.status === 'resolved' && inState && existing.resolvedAt !== null && existing.resolvedAt < user.kycStateChangedAt) {
    const upd = { status: 'open' as const, resolutionReason: null, resolutionComment: null, openedAt, statusChangedAt: openedAt, resolvedAt: null, resolvedBy: null, updatedAt: now };
    const r = await db.updateTable('reviewCases').set(upd).where('userId', '=', userId).where('status', '=', 'resolved').executeTakeFirst();
    if (Number(r.numUpdatedRows) > 0) await insertEvent(db, userId, actor, 'reopened', { to: 'open', openedAt, state: user.kycState, previousReason: existing.resolutionReason }, now);
    return { ...existing, ...upd };
  }
  return existing;
}

export async function getCase(db: Executor, userId: string): Promise<ReviewCase | undefined> {
  return db.selectFrom('reviewCases').selectAll().where('userId', '=', userId).executeTakeFirst();
}

// ------------------------------------------------------------------ assignment

export interface ClaimResult {
  userId: string;
  /** Candidates another operator took between our read and our UPDATE. */
  lostRaces: number;
}

/**
 * Claims the oldest unassigned case for `actor`. Atomic on both engines: the claim is one
 * conditional UPDATE (… where assignee_id is null) on one candidate; 0 rows means someone else
 * won it and we try the next. The UPDATE is the transaction's first statement, so on SQLite it
 * takes the write lock before any read (no stale snapshot) and on PostgreSQL the row lock.
 */
export async function claimNext(db: Executor, actor: CaseActor & { id: string }, filters: Pick<QueueFilters, 'states' | 'country'> = {}): Promise<ClaimResult | null> {
  let lostRaces = 0;
  for (let round = 0; round < 10; round++) {
    const candidates = await queueBase(db, { ...filters, unassigned: true }, null)
      .select(['users.id as userId'])
      .select(queuedAtExpr.as('queuedAt'))
      .orderBy('queuedAt', 'asc')
      .orderBy('users.id', 'asc')
      .limit(5)
      .execute();
    if (candidates.length === 0) return null;
    for (const c of candidates) {
      const won = await runInTransaction(db, async (trx) => {
        const r = await trx
          .updateTable('users')
          .set({ assigneeId: actor.id, updatedAt: nowIso() })
          .where('id', '=', c.userId)
          .where('assigneeId', 'is', null)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return false;
        await ensureCase(trx, c.userId, actor);
        await insertEvent(trx, c.userId, actor, 'claimed', { to: actor.id, toLabel: actor.label });
        return true;
      });
      if (won) return { userId: c.userId, lostRaces };
      lostRaces++;
    }
  }
  return null;
}

async function runInTransaction<T>(db: Executor, fn: (trx: Executor) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db);
  return (db as import('kysely').Kysely<import('../schema.js').Database>).transaction().execute(fn);
}

export const CAN_WORK_CASES: readonly Role[] = ['compliance', 'admin'];

/** Assigns (or, with null, unassigns) a case. Only active operators who can work cases qualify. */
export async function assignCase(db: Executor, userId: string, assigneeId: string | null, actor: CaseActor): Promise<{ from: string | null; to: string | null; changed: boolean }> {
  let toLabel: string | null = null;
  if (assigneeId) {
    const op = await db.selectFrom('operators').select(['id', 'email', 'role', 'disabled']).where('id', '=', assigneeId).executeTakeFirst();
    if (!op) throw new CaseError('That operator does not exist.');
    if (op.disabled) throw new CaseError(`${op.email} is disabled and cannot take cases.`);
    if (!CAN_WORK_CASES.includes(op.role)) throw new CaseError(`${op.email} is a viewer and cannot work cases; choose a compliance operator or an admin.`);
    toLabel = op.email;
  }
  return runInTransaction(db, async (trx) => {
    const before = await trx.selectFrom('users').select(['assigneeId']).where('id', '=', userId).executeTakeFirst();
    if (!before) throw new CaseError('No customer with this id.', 404);
    if (before.assigneeId === assigneeId) return { from: before.assigneeId, to: assigneeId, changed: false };
    await trx.updateTable('users').set({ assigneeId, updatedAt: nowIso() }).where('id', '=', userId).execute();
    await ensureCase(trx, userId, actor);
    await insertEvent(trx, userId, actor, assigneeId ? 'assigned' : 'unassigned', { from: before.assigneeId, to: assigneeId, toLabel });
    return { from: before.assigneeId, to: assigneeId, changed: true };
  });
}

// ------------------------------------------------------------------ notes and tasks

export const NOTE_MAX = 5000;

export async function addNote(db: Executor, userId: string, actor: CaseActor, bodyRaw: string): Promise<CaseNote> {
  const body = bodyRaw.replace(/\r\n/g, '\n').trim();
  if (!body) throw new CaseError('Write the note before saving it.');
  if (body.length > NOTE_MAX) throw new CaseError(`Notes are limited to ${NOTE_MAX} characters (this one has ${body.length}).`);
  return runInTransaction(db, async (trx) => {
    await ensureCase(trx, userId, actor);
    const at = nowIso();
    const r = await trx.insertInto('caseNotes').values({ userId, at, authorId: actor.id, author: actor.label, body }).returning('id').executeTakeFirstOrThrow();
    return { id: r.id, userId, at, authorId: actor.id, author: actor.label, body };
  });
}

export async function notesForUser(db: Executor, userId: string): Promise<CaseNote[]> {
  return db.selectFrom('caseNotes').selectAll().where('userId', '=', userId).orderBy('id', 'desc').execute();
}

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

export async function addTask(db: Executor, userId: string, actor: CaseActor, input: { title: string; dueOn: string }): Promise<CaseTask> {
  const title = input.title.trim();
  if (!title) throw new CaseError('Describe the follow-up task.');
  if (title.length > 300) throw new CaseError('Keep the task title under 300 characters.');
  if (!ISO_DAY.test(input.dueOn) || Number.isNaN(Date.parse(`${input.dueOn}T00:00:00Z`)) || new Date(`${input.dueOn}T00:00:00Z`).toISOString().slice(0, 10) !== input.dueOn) {
    throw new CaseError('Give the due date as a real date (YYYY-MM-DD).');
  }
  return runInTransaction(db, async (trx) => {
    await ensureCase(trx, userId, actor);
    const createdAt = nowIso();
    const r = await trx.insertInto('caseTasks').values({ userId, title, dueOn: input.dueOn, createdAt, createdBy: actor.id, doneAt: null, doneBy: null }).returning('id').executeTakeFirstOrThrow();
    await insertEvent(trx, userId, actor, 'task_added', { taskId: r.id, title, dueOn: input.dueOn }, createdAt);
    return { id: r.id, userId, title, dueOn: input.dueOn, createdAt, createdBy: actor.id, doneAt: null, doneBy: null };
  });
}

/** Marks a task done (once: a second click is a no-op, not a second history entry). */
export async function completeTask(db: Executor, userId: string, taskId: number, actor: CaseActor): Promise<{ changed: boolean; task: CaseTask }> {
  return runInTransaction(db, async (trx) => {
    const task = await trx.selectFrom('caseTasks').selectAll().where('id', '=', taskId).where('userId', '=', userId).executeTakeFirst();
    if (!task) throw new CaseError('No such task on this case.', 404);
    const at = nowIso();
    const r = await trx.updateTable('caseTasks').set({ doneAt: at, doneBy: actor.id }).where('id', '=', taskId).where('doneAt', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return { changed: false, task };
    await insertEvent(trx, userId, actor, 'task_done', { taskId, title: task.title }, at);
    return { changed: true, task: { ...task, doneAt: at, doneBy: actor.id } };
  });
}

export async function tasksForUser(db: Executor, userId: string): Promise<CaseTask[]> {
  return db.selectFrom('caseTasks').selectAll().where('userId', '=', userId).orderBy('doneAt', 'asc').orderBy('dueOn', 'asc').orderBy('id', 'asc').execute();
}

// ------------------------------------------------------------------ status

export const isCaseStatus = (s: string): s is CaseStatus => (CASE_STATUSES as readonly string[]).includes(s);
export const isResolutionReason = (s: string): s is ResolutionReason => (RESOLUTION_REASONS as readonly string[]).includes(s);

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
  return runInTransaction(db, async (trx) => {
    const c = await ensureCase(trx, userId, actor);
    if (c.status === input.status) return { from: c.status, to: c.status, changed: false };
    const at = nowIso();
    const resolved = input.status === 'resolved';
    const reopening = c.status === 'resolved';
    await trx
      .updateTable('reviewCases')
      .set({
        status: input.status,
        statusChangedAt: at,
        updatedAt: at,
        resolutionReason: resolved ? input.reason! : null,
        resolutionComment: resolved ? comment : null,
        resolvedAt: resolved ? at : null,
        resolvedBy: resolved ? actor.id : null,
        // Reopening by hand starts a new wait.
        ...(reopening ? { openedAt: at } : {}),
      })
      .where('userId', '=', userId)
      .execute();
    await insertEvent(trx, userId, actor, reopening ? 'reopened' : 'status', { from: c.status, to: input.status, ...(resolved ? { reason: input.reason, comment } : {}) }, at);
    return { from: c.status, to: input.status, changed: true };
  });
}

// ------------------------------------------------------------------ case page and timeline

export async function caseView(db: Executor, userId: string, now: number, targets: SlaTargets) {
  const user = await db
    .selectFrom('users')
    .leftJoin('operators', 'operators.id', 'users.assigneeId')
    .leftJoin('reviewCases', 'reviewCases.userId', 'users.id')
    .select([
      'users.id', 'users.externalUserId', 'users.email', 'users.alias', 'users.country', 'users.kycState', 'users.kycStateChangedAt', 'users.kycStateReason',
      'users.assigneeId', 'operators.name as assigneeName', 'operators.email as assigneeEmail',
    ])
    .select(inQueue.as('inQueue'))
    .where('users.id', '=', userId)
    .executeTakeFirst();
  if (!user) return null;
  const c = await getCase(db, userId);
  const live = !!c && c.status !== 'resolved';
  const queued = Boolean(Number(user.inQueue));
  const openedAt = live ? c!.openedAt : user.kycStateChangedAt;
  const { states, statuses } = await historyFor(db, [userId]);
  const sla = queued || live
    ? slaClock({ openedAt, currentState: user.kycState, currentStateAt: user.kycStateChangedAt, stateChanges: states.get(userId) ?? [], statusChanges: live ? statuses.get(userId) ?? [] : [] }, now, targets)
    : null;
  const [notes, tasks] = await Promise.all([notesForUser(db, userId), tasksForUser(db, userId)]);
  return { user: { ...user, inQueue: queued }, case: c ?? null, caseStatus: (live ? c!.status : queued ? 'open' : c?.status ?? null) as CaseStatus | null, sla, notes, tasks };
}

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

const STATUS_LABEL: Record<CaseStatus, string> = { open: 'open', waiting_customer: 'waiting on customer', waiting_capa: 'waiting on Capa', resolved: 'resolved' };
export const statusLabel = (s: CaseStatus) => STATUS_LABEL[s];
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
  const [notes, events] = await Promise.all([
    notesForUser(db, userId),
    db.selectFrom('caseEvents').selectAll().where('userId', '=', userId).orderBy('id', 'desc').limit(500).execute(),
  ]);
  const out: CaseTimelineEntry[] = notes.map((n) => ({ key: `case-note:${n.id}`, at: n.at, kind: 'note', title: `Note by ${n.author}`, detail: n.body, actor: n.author }));
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
        const reason = d.reason ? REASON_LABEL[d.reason as ResolutionReason] ?? String(d.reason) : null;
        out.push({ ...base, kind: 'status', title: `Case ${STATUS_LABEL[to] ?? to}`, detail: [reason, d.comment].filter(Boolean).join(' — ') || null });
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
