import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type {
  CaseEvent,
  CaseEventKind,
  CaseNote,
  CaseStatus,
  CaseTask,
  Database,
  KycState,
  ResolutionReason,
  ReviewCase,
} from '../schema.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

/**
 * Manual-review follow-up, as stored: the review queue's rows, case work (assignment, claim-next,
 * append-only notes, follow-up tasks, case status and resolution) and the case history. The rules
 * (SLA clocks, who may take a case, what a note or task must look like, the words on the
 * timeline) are the review feature's: app/review/.
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

export interface CaseActor {
  id: string | null;
  /** What the history shows (the operator's e-mail). */
  label: string;
}

/** The customer (or the task) a case action names does not exist. */
export class CaseNotFound extends Error {
  constructor(readonly what: 'customer' | 'task') {
    super(what === 'customer' ? 'no such customer' : 'no such task on this case');
    this.name = 'CaseNotFound';
  }
}

// ------------------------------------------------------------------ the queue

/** What the queue's SQL filters on (the SLA-based "breached" filter is the review feature's). */
export interface QueueFilters {
  mine?: boolean;
  unassigned?: boolean;
  states?: KycState[];
  country?: 'MX' | 'DO' | null;
}

export interface QueueCandidate {
  userId: string;
  externalUserId: string;
  email: string;
  alias: string | null;
  country: 'MX' | 'DO' | null;
  kycState: KycState;
  kycStateChangedAt: string;
  assigneeId: string | null;
  assigneeName: string | null;
  /** The case row's status; null without a row. */
  caseStatus: CaseStatus | null;
  queuedAt: string;
}

/** Each customer's state changes and case status changes, oldest first (what an SLA clock reads). */
export interface CaseHistories {
  states: Map<string, Array<{ at: string; toState: KycState }>>;
  statuses: Map<string, Array<{ at: string; status: CaseStatus }>>;
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
  let q = db.selectFrom('users').leftJoin('reviewCases', 'reviewCases.userId', 'users.id').where(inQueue);
  if (f.mine && operatorId) q = q.where('users.assigneeId', '=', operatorId);
  if (f.unassigned) q = q.where('users.assigneeId', 'is', null);
  if (f.states?.length) q = q.where('users.kycState', 'in', f.states);
  if (f.country) q = q.where('users.country', '=', f.country);
  return q;
}

async function historyFor(db: Executor, userIds: string[]): Promise<CaseHistories> {
  const states = new Map<string, Array<{ at: string; toState: KycState }>>();
  const statuses = new Map<string, Array<{ at: string; status: CaseStatus }>>();
  for (let i = 0; i < userIds.length; i += 500) {
    const ids = userIds.slice(i, i + 500);
    const [sc, ev] = await Promise.all([
      db.selectFrom('stateChanges').select(['userId', 'at', 'toState']).where('userId', 'in', ids).orderBy('id', 'asc').execute(),
      db
        .selectFrom('caseEvents')
        .select(['userId', 'at', 'detail'])
        .where('userId', 'in', ids)
        .where('kind', 'in', ['status', 'reopened'])
        .orderBy('id', 'asc')
        .execute(),
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
 * The review queue's rows matching the SQL filters (mine, unassigned, states, country), oldest
 * first, at most QUEUE_CAP of them, with what their SLA clocks need: the histories and each
 * customer's open tasks (count and next due day).
 */
export async function reviewQueueRows(
  db: Executor,
  opts: { filters: QueueFilters; operatorId: string | null },
): Promise<{
  rows: QueueCandidate[];
  truncated: boolean;
  history: CaseHistories;
  openTasks: Map<string, { n: number; next: string | null }>;
}> {
  const raw = await queueBase(db, opts.filters, opts.operatorId)
    .leftJoin('operators', 'operators.id', 'users.assigneeId')
    .select([
      'users.id as userId',
      'users.externalUserId',
      'users.email',
      'users.alias',
      'users.country',
      'users.kycState',
      'users.kycStateChangedAt',
      'users.assigneeId',
      'operators.name as assigneeName',
      'reviewCases.status as caseStatus',
      'reviewCases.resolvedAt',
    ])
    .select(queuedAtExpr.as('queuedAt'))
    .orderBy('queuedAt', 'asc')
    .orderBy('users.id', 'asc')
    .limit(QUEUE_CAP + 1)
    .execute();
  const truncated = raw.length > QUEUE_CAP;
  const rows = raw.slice(0, QUEUE_CAP).map(({ resolvedAt: _r, ...r }) => ({
    ...r,
    assigneeName: r.assigneeName ?? null,
    caseStatus: (r.caseStatus as CaseStatus | null) ?? null,
  }));
  const ids = rows.map((r) => r.userId);
  const history = await historyFor(db, ids);
  const openTasks = new Map<string, { n: number; next: string | null }>();
  for (let i = 0; i < ids.length; i += 500) {
    const found = await db
      .selectFrom('caseTasks')
      .select(['userId'])
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('dueOn').as('next')])
      .where('userId', 'in', ids.slice(i, i + 500))
      .where('doneAt', 'is', null)
      .groupBy('userId')
      .execute();
    for (const r of found) openTasks.set(r.userId, { n: Number(r.n), next: (r.next as string | null) ?? null });
  }
  return { rows, truncated, history, openTasks };
}

// ------------------------------------------------------------------ case rows

async function insertEvent(
  db: Executor,
  userId: string,
  actor: CaseActor,
  kind: CaseEventKind,
  detail: Record<string, unknown> | null,
  at = nowIso(),
) {
  await db
    .insertInto('caseEvents')
    .values({ userId, at, actorId: actor.id, actor: actor.label, kind, detail: detail ? JSON.stringify(detail) : null })
    .execute();
}

/** The columns of a case (re)opened at `openedAt`: nothing resolved. */
function openCaseFields(openedAt: string, now: string) {
  return {
    status: 'open' as const,
    resolutionReason: null,
    resolutionComment: null,
    openedAt,
    statusChangedAt: openedAt,
    resolvedAt: null,
    resolvedBy: null,
    updatedAt: now,
  };
}

/**
 * The customer's case, created on first use. A case resolved before the customer entered
 * REVIEW_NEEDED/REJECTED again is reopened (a new wait starts when the state changed).
 */
export async function ensureCase(db: Executor, userId: string, actor: CaseActor): Promise<ReviewCase> {
  const user = await db.selectFrom('users').select(['kycState', 'kycStateChangedAt']).where('id', '=', userId).executeTakeFirst();
  if (!user) throw new CaseNotFound('customer');
  const now = nowIso();
  const inState = QUEUE_STATES.includes(user.kycState);
  const openedAt = inState ? user.kycStateChangedAt : now;
  const existing = await db.selectFrom('reviewCases').selectAll().where('userId', '=', userId).executeTakeFirst();
  if (!existing) {
    const row: ReviewCase = { userId, ...openCaseFields(openedAt, now) };
    const r = await db
      .insertInto('reviewCases')
      .values(row)
      .onConflict((oc) => oc.column('userId').doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) {
      await insertEvent(db, userId, actor, 'opened', { openedAt, state: user.kycState }, now);
      return row;
    }
    return db.selectFrom('reviewCases').selectAll().where('userId', '=', userId).executeTakeFirstOrThrow();
  }
  if (existing.status === 'resolved' && inState && existing.resolvedAt !== null && existing.resolvedAt < user.kycStateChangedAt) {
    const upd = openCaseFields(openedAt, now);
    const r = await db.updateTable('reviewCases').set(upd).where('userId', '=', userId).where('status', '=', 'resolved').executeTakeFirst();
    if (Number(r.numUpdatedRows) > 0)
      await insertEvent(
        db,
        userId,
        actor,
        'reopened',
        { to: 'open', openedAt, state: user.kycState, previousReason: existing.resolutionReason },
        now,
      );
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
export async function claimNext(
  db: Executor,
  actor: CaseActor & { id: string },
  filters: Pick<QueueFilters, 'states' | 'country'> = {},
): Promise<ClaimResult | null> {
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
  return (db as Kysely<Database>).transaction().execute(fn);
}

/**
 * Sets (or, with null, clears) the customer's assignee and records it on the case. The caller has
 * checked that the assignee may work cases; `toLabel` is what the history shows for them.
 */
export async function setAssignee(
  db: Executor,
  userId: string,
  assigneeId: string | null,
  actor: CaseActor,
  toLabel: string | null,
): Promise<{ from: string | null; to: string | null; changed: boolean }> {
  return runInTransaction(db, async (trx) => {
    const before = await trx.selectFrom('users').select(['assigneeId']).where('id', '=', userId).executeTakeFirst();
    if (!before) throw new CaseNotFound('customer');
    if (before.assigneeId === assigneeId) return { from: before.assigneeId, to: assigneeId, changed: false };
    await trx.updateTable('users').set({ assigneeId, updatedAt: nowIso() }).where('id', '=', userId).execute();
    await ensureCase(trx, userId, actor);
    await insertEvent(trx, userId, actor, assigneeId ? 'assigned' : 'unassigned', { from: before.assigneeId, to: assigneeId, toLabel });
    return { from: before.assigneeId, to: assigneeId, changed: true };
  });
}

// ------------------------------------------------------------------ notes and tasks

/** Appends a note (its text already checked) to the customer's case. */
export async function insertNote(db: Executor, userId: string, actor: CaseActor, body: string): Promise<CaseNote> {
  return runInTransaction(db, async (trx) => {
    await ensureCase(trx, userId, actor);
    const at = nowIso();
    const r = await trx
      .insertInto('caseNotes')
      .values({ userId, at, authorId: actor.id, author: actor.label, body })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: r.id, userId, at, authorId: actor.id, author: actor.label, body };
  });
}

export async function notesForUser(db: Executor, userId: string): Promise<CaseNote[]> {
  return db.selectFrom('caseNotes').selectAll().where('userId', '=', userId).orderBy('id', 'desc').execute();
}

/** Adds a follow-up task (title and due day already checked) to the customer's case. */
export async function insertTask(
  db: Executor,
  userId: string,
  actor: CaseActor,
  input: { title: string; dueOn: string },
): Promise<CaseTask> {
  const { title } = input;
  return runInTransaction(db, async (trx) => {
    await ensureCase(trx, userId, actor);
    const createdAt = nowIso();
    const r = await trx
      .insertInto('caseTasks')
      .values({ userId, title, dueOn: input.dueOn, createdAt, createdBy: actor.id, doneAt: null, doneBy: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    await insertEvent(trx, userId, actor, 'task_added', { taskId: r.id, title, dueOn: input.dueOn }, createdAt);
    return { id: r.id, userId, title, dueOn: input.dueOn, createdAt, createdBy: actor.id, doneAt: null, doneBy: null };
  });
}

/** Marks a task done (once: a second click is a no-op, not a second history entry). */
export async function completeTask(
  db: Executor,
  userId: string,
  taskId: number,
  actor: CaseActor,
): Promise<{ changed: boolean; task: CaseTask }> {
  return runInTransaction(db, async (trx) => {
    const task = await trx.selectFrom('caseTasks').selectAll().where('id', '=', taskId).where('userId', '=', userId).executeTakeFirst();
    if (!task) throw new CaseNotFound('task');
    const at = nowIso();
    const r = await trx
      .updateTable('caseTasks')
      .set({ doneAt: at, doneBy: actor.id })
      .where('id', '=', taskId)
      .where('doneAt', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return { changed: false, task };
    await insertEvent(trx, userId, actor, 'task_done', { taskId, title: task.title }, at);
    return { changed: true, task: { ...task, doneAt: at, doneBy: actor.id } };
  });
}

export async function tasksForUser(db: Executor, userId: string): Promise<CaseTask[]> {
  return db
    .selectFrom('caseTasks')
    .selectAll()
    .where('userId', '=', userId)
    .orderBy('doneAt', 'asc')
    .orderBy('dueOn', 'asc')
    .orderBy('id', 'asc')
    .execute();
}

// ------------------------------------------------------------------ status

/** Moves the case to a status (a resolution's reason and comment already checked). */
export async function updateCaseStatus(
  db: Executor,
  userId: string,
  actor: CaseActor,
  input: { status: CaseStatus; reason: ResolutionReason | null; comment: string | null },
): Promise<{ from: CaseStatus; to: CaseStatus; changed: boolean }> {
  const { comment } = input;
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
    await insertEvent(
      trx,
      userId,
      actor,
      reopening ? 'reopened' : 'status',
      { from: c.status, to: input.status, ...(resolved ? { reason: input.reason, comment } : {}) },
      at,
    );
    return { from: c.status, to: input.status, changed: true };
  });
}

// ------------------------------------------------------------------ case page and history

/** One customer with their case, its notes and tasks, and the history an SLA clock reads. */
export async function caseRecord(db: Executor, userId: string) {
  const user = await db
    .selectFrom('users')
    .leftJoin('operators', 'operators.id', 'users.assigneeId')
    .leftJoin('reviewCases', 'reviewCases.userId', 'users.id')
    .select([
      'users.id',
      'users.externalUserId',
      'users.email',
      'users.alias',
      'users.country',
      'users.kycState',
      'users.kycStateChangedAt',
      'users.kycStateReason',
      'users.assigneeId',
      'operators.name as assigneeName',
      'operators.email as assigneeEmail',
    ])
    .select(inQueue.as('inQueue'))
    .where('users.id', '=', userId)
    .executeTakeFirst();
  if (!user) return null;
  const [c, history, notes, tasks] = await Promise.all([
    getCase(db, userId),
    historyFor(db, [userId]),
    notesForUser(db, userId),
    tasksForUser(db, userId),
  ]);
  return {
    user: { ...user, inQueue: Boolean(Number(user.inQueue)) },
    case: c ?? null,
    stateChanges: history.states.get(userId) ?? [],
    statusChanges: history.statuses.get(userId) ?? [],
    notes,
    tasks,
  };
}

/** A customer's case notes and case events (the newest 500), newest first. */
export async function caseHistoryForUser(db: Executor, userId: string): Promise<{ notes: CaseNote[]; events: CaseEvent[] }> {
  const [notes, events] = await Promise.all([
    notesForUser(db, userId),
    db.selectFrom('caseEvents').selectAll().where('userId', '=', userId).orderBy('id', 'desc').limit(500).execute(),
  ]);
  return { notes, events };
}
