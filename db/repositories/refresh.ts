import { sql, type Kysely } from 'kysely';
import type { Database, KycState, RefreshRun, RefreshRunKind, RefreshRunStatus } from '../schema.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

/**
 * Stale-status refresh. A customer is stale when it waits in a state Capa can still move
 * (link sent, in progress, review needed) and Capa last confirmed our state longer ago than that
 * state's threshold. Runs record which customers a cycle asked about; progress is derived from the
 * customers' own `capaConfirmedAt` (every answer of Get KYC Details stamps it, 404 included) so no
 * per-answer bookkeeping is needed and nothing can drift from the truth.
 */

/** States Capa can still move without us: refreshed on a schedule. */
export const REFRESHABLE_STATES = ['LINK_ISSUED', 'IN_PROGRESS', 'REVIEW_NEEDED'] as const satisfies readonly KycState[];
export type RefreshableState = (typeof REFRESHABLE_STATES)[number];

/** Per-state age (ms) after which Capa's confirmation counts as stale. */
export type StaleThresholds = Record<RefreshableState, number>;

export function thresholdsFromEnv(e: {
  REFRESH_STALE_LINK_ISSUED_MINUTES: number;
  REFRESH_STALE_IN_PROGRESS_MINUTES: number;
  REFRESH_STALE_REVIEW_NEEDED_MINUTES: number;
}): StaleThresholds {
  return {
    LINK_ISSUED: e.REFRESH_STALE_LINK_ISSUED_MINUTES * 60_000,
    IN_PROGRESS: e.REFRESH_STALE_IN_PROGRESS_MINUTES * 60_000,
    REVIEW_NEEDED: e.REFRESH_STALE_REVIEW_NEEDED_MINUTES * 60_000,
  };
}

const cutoff = (thresholds: StaleThresholds, s: RefreshableState, now: number) => new Date(now - thresholds[s]).toISOString();

function staleInState(db: Executor, s: RefreshableState, before: string) {
  return db
    .selectFrom('users')
    .where('kycState', '=', s)
    .where('capaUserId', 'is not', null)
    .where((eb) => eb.or([eb('capaConfirmedAt', 'is', null), eb('capaConfirmedAt', '<', before)]));
}

/**
 * The stalest customers first, at most `limit`. One indexed query per state (users_confirmed:
 * kyc_state, capa_confirmed_at) merged here, so a million settled customers cost nothing.
 */
export async function findStaleUsers(
  db: Executor,
  thresholds: StaleThresholds,
  opts: { limit: number; now?: number },
): Promise<Array<{ id: string; kycState: KycState; capaConfirmedAt: string | null }>> {
  const now = opts.now ?? Date.now();
  if (opts.limit <= 0) return [];
  const parts = await Promise.all(
    REFRESHABLE_STATES.map((s) =>
      staleInState(db, s, cutoff(thresholds, s, now))
        .select(['id', 'kycState', 'capaConfirmedAt'])
        .orderBy('capaConfirmedAt', 'asc')
        .orderBy('id', 'asc')
        .limit(opts.limit)
        .execute(),
    ),
  );
  return parts
    .flat()
    .sort((a, b) =>
      (a.capaConfirmedAt ?? '') < (b.capaConfirmedAt ?? '')
        ? -1
        : (a.capaConfirmedAt ?? '') > (b.capaConfirmedAt ?? '')
          ? 1
          : a.id < b.id
            ? -1
            : 1,
    )
    .slice(0, opts.limit);
}

export async function countStale(
  db: Executor,
  thresholds: StaleThresholds,
  now = Date.now(),
): Promise<Record<RefreshableState, number> & { total: number }> {
  const counts = await Promise.all(
    REFRESHABLE_STATES.map(async (s) => {
      const r = await staleInState(db, s, cutoff(thresholds, s, now))
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      return [s, Number(r?.n ?? 0)] as const;
    }),
  );
  const out = Object.fromEntries(counts) as Record<RefreshableState, number>;
  return { ...out, total: counts.reduce((a, [, n]) => a + n, 0) };
}

export interface StaleRow {
  id: string;
  externalUserId: string;
  email: string;
  kycState: KycState;
  capaConfirmedAt: string | null;
  kycStateChangedAt: string;
  unmappedResult: string | null;
  linkExpired: number;
}

export const STALE_SORTABLE = ['capaConfirmedAt', 'kycStateChangedAt', 'kycState'] as const;
export type StaleSort = (typeof STALE_SORTABLE)[number];

/** One page of stale customers for the operator's table (server-side sort, filter and paging). */
export async function listStale(
  db: Executor,
  thresholds: StaleThresholds,
  q: { state: RefreshableState | null; sort: StaleSort; dir: 'asc' | 'desc'; page: number; pageSize: number; now?: number },
): Promise<{ rows: StaleRow[]; total: number }> {
  const now = q.now ?? Date.now();
  const states = q.state ? [q.state] : [...REFRESHABLE_STATES];
  const base = db
    .selectFrom('users')
    .where('capaUserId', 'is not', null)
    .where((eb) =>
      eb.or(
        states.map((s) =>
          eb.and([
            eb('kycState', '=', s),
            eb.or([eb('capaConfirmedAt', 'is', null), eb('capaConfirmedAt', '<', cutoff(thresholds, s, now))]),
          ]),
        ),
      ),
    );
  const [rows, total] = await Promise.all([
    base
      .select(['id', 'externalUserId', 'email', 'kycState', 'capaConfirmedAt', 'kycStateChangedAt', 'unmappedResult', 'linkExpired'])
      .orderBy(q.sort, q.dir)
      .orderBy('id', q.dir)
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize)
      .execute(),
    base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirst(),
  ]);
  return { rows: rows as StaleRow[], total: Number(total?.n ?? 0) };
}

/** Of the given customers, those Capa knows (a fetch can be asked for) and those it does not yet. */
export async function splitRefreshable(
  db: Executor,
  userIds: string[],
): Promise<{ eligible: string[]; notInCapa: string[]; unknown: string[] }> {
  const found = new Map<string, string | null>();
  for (let i = 0; i < userIds.length; i += 500) {
    const rows = await db
      .selectFrom('users')
      .select(['id', 'capaUserId'])
      .where('id', 'in', userIds.slice(i, i + 500))
      .execute();
    for (const r of rows) found.set(r.id, r.capaUserId);
  }
  const eligible: string[] = [];
  const notInCapa: string[] = [];
  const unknown: string[] = [];
  for (const id of new Set(userIds)) {
    if (!found.has(id)) unknown.push(id);
    else if (found.get(id)) eligible.push(id);
    else notInCapa.push(id);
  }
  return { eligible, notInCapa, unknown };
}

// ------------------------------------------------------------------ runs

export interface NewRun {
  kind: RefreshRunKind;
  requestedBy?: string | null;
  requestId?: string | null;
  ratePerSec: number;
  etaSeconds?: number | null;
  skipped?: number;
}

/** Creates a run; with a request id, a second submit of the same form returns the first run. */
export async function createRun(db: Executor, input: NewRun): Promise<{ run: RefreshRun; created: boolean }> {
  if (input.requestId) {
    const existing = await db.selectFrom('refreshRuns').selectAll().where('requestId', '=', input.requestId).executeTakeFirst();
    if (existing) return { run: existing, created: false };
  }
  try {
    const r = await db
      .insertInto('refreshRuns')
      .values({
        kind: input.kind,
        status: 'queued',
        requestedBy: input.requestedBy ?? null,
        requestId: input.requestId ?? null,
        createdAt: nowIso(),
        startedAt: null,
        enqueuedAt: null,
        finishedAt: null,
        skipped: input.skipped ?? 0,
        ratePerSec: input.ratePerSec,
        etaSeconds: input.etaSeconds ?? null,
        error: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { run: r, created: true };
  } catch (err) {
    // Two submits raced on the unique request id: the other one won.
    if (input.requestId && /unique|duplicate/i.test(String((err as Error).message))) {
      const existing = await db.selectFrom('refreshRuns').selectAll().where('requestId', '=', input.requestId).executeTakeFirstOrThrow();
      return { run: existing, created: false };
    }
    throw err;
  }
}

/** Records the customers a run asks about (idempotent: a resumed run re-adds nothing). */
export async function addRunUsers(db: Executor, runId: number, userIds: string[]): Promise<void> {
  for (let i = 0; i < userIds.length; i += 400) {
    const chunk = userIds.slice(i, i + 400);
    if (!chunk.length) continue;
    await db
      .insertInto('refreshRunUsers')
      .values(chunk.map((userId) => ({ runId, userId })))
      .onConflict((oc) => oc.columns(['runId', 'userId']).doNothing())
      .execute();
  }
  const n = await db
    .selectFrom('refreshRunUsers')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('runId', '=', runId)
    .executeTakeFirst();
  await db
    .updateTable('refreshRuns')
    .set({ total: Number(n?.n ?? 0) })
    .where('id', '=', runId)
    .execute();
}

export async function runUserIds(db: Executor, runId: number): Promise<string[]> {
  const rows = await db.selectFrom('refreshRunUsers').select('userId').where('runId', '=', runId).orderBy('userId').execute();
  return rows.map((r) => r.userId);
}

export async function getRun(db: Executor, id: number): Promise<RefreshRun | undefined> {
  return db.selectFrom('refreshRuns').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The run a form's request id started, if any (a form sent twice starts one run). */
export async function findRunByRequestId(db: Executor, requestId: string): Promise<RefreshRun | undefined> {
  return db.selectFrom('refreshRuns').selectAll().where('requestId', '=', requestId).executeTakeFirst();
}

export async function updateRun(
  db: Executor,
  id: number,
  patch: Partial<
    Pick<
      RefreshRun,
      'status' | 'startedAt' | 'enqueuedAt' | 'finishedAt' | 'enqueued' | 'answered' | 'failed' | 'drift' | 'error' | 'etaSeconds'
    >
  >,
): Promise<void> {
  await db.updateTable('refreshRuns').set(patch).where('id', '=', id).execute();
}

export async function listRuns(db: Executor, opts: { limit?: number; kinds?: RefreshRunKind[] } = {}): Promise<RefreshRun[]> {
  let q = db
    .selectFrom('refreshRuns')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(opts.limit ?? 20);
  if (opts.kinds?.length) q = q.where('kind', 'in', opts.kinds);
  return q.execute();
}

export async function openRuns(db: Executor): Promise<RefreshRun[]> {
  return db
    .selectFrom('refreshRuns')
    .selectAll()
    .where('status', 'in', ['queued', 'enqueuing', 'running'] satisfies RefreshRunStatus[])
    .orderBy('id')
    .execute();
}

export interface RunProgress {
  total: number;
  /** Capa answered (details, 404 "no KYC yet" or an unmapped value) after the run started. */
  answered: number;
  /** The fetch failed for good (attempts exhausted) without an answer. */
  failed: number;
  pending: number;
  drift: number;
  settled: boolean;
}

/** Live progress, computed from the customers themselves. */
export async function runProgress(db: Executor, run: Pick<RefreshRun, 'id' | 'startedAt' | 'total'>): Promise<RunProgress> {
  if (!run.startedAt) return { total: run.total, answered: 0, failed: 0, pending: run.total, drift: 0, settled: run.total === 0 };
  const since = run.startedAt;
  const r = await db
    .selectFrom('refreshRunUsers as ru')
    .innerJoin('users as u', 'u.id', 'ru.userId')
    .where('ru.runId', '=', run.id)
    .select((eb) => [
      eb.fn.countAll().as('total'),
      eb.fn.sum<number>(eb.case().when('u.capaConfirmedAt', '>=', since).then(1).else(0).end()).as('answered'),
      eb.fn
        .sum<number>(
          eb
            .case()
            .when(
              eb.and([
                eb.or([eb('u.capaConfirmedAt', 'is', null), eb('u.capaConfirmedAt', '<', since)]),
                eb.exists(
                  eb
                    .selectFrom('jobRuns as j')
                    .select(sql<number>`1`.as('one'))
                    .whereRef('j.userId', '=', 'ru.userId')
                    .where('j.jobName', '=', 'fetch-details')
                    .where('j.status', '=', 'failed')
                    .where('j.startedAt', '>=', since),
                ),
              ]),
            )
            .then(1)
            .else(0)
            .end(),
        )
        .as('failed'),
    ])
    .executeTakeFirst();
  const d = await db
    .selectFrom('driftEvents')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('runId', '=', run.id)
    .executeTakeFirst();
  const total = Number(r?.total ?? 0);
  const answered = Number(r?.answered ?? 0);
  const failed = Number(r?.failed ?? 0);
  const pending = Math.max(0, total - answered - failed);
  return { total, answered, failed, pending, drift: Number(d?.n ?? 0), settled: pending === 0 };
}

/**
 * Closes a run whose every customer has an answer or a final failure; a run still pending long
 * after its ETA (Redis lost the jobs, a worker was down for hours) is closed with the rest counted
 * as failed, so a dead run never stays "running" forever.
 */
export async function settleRun(
  db: Executor,
  run: RefreshRun,
  opts: { now?: number; giveUpAfterMs?: number } = {},
): Promise<{ settled: boolean; progress: RunProgress }> {
  const progress = await runProgress(db, run);
  const now = opts.now ?? Date.now();
  const ref = run.enqueuedAt ?? run.startedAt;
  const overdue =
    run.status === 'running' &&
    ref !== null &&
    now - Date.parse(ref) > (opts.giveUpAfterMs ?? Math.max(3_600_000, (run.etaSeconds ?? 0) * 3_000));
  if (run.status === 'running' && (progress.settled || overdue)) {
    await updateRun(db, run.id, {
      status: 'done',
      finishedAt: nowIso(),
      answered: progress.answered,
      failed: progress.failed + (progress.settled ? 0 : progress.pending),
      drift: progress.drift,
      ...(progress.settled ? {} : { error: `${progress.pending} customer(s) got no answer within the time allowed` }),
    });
    return { settled: true, progress };
  }
  return { settled: false, progress };
}

/** Scheduled runs keep their per-customer rows for a week; operator runs keep them. */
export async function pruneScheduledRunUsers(db: Executor, olderThan: string): Promise<number> {
  const old = db
    .selectFrom('refreshRuns')
    .select('id')
    .where('kind', '=', 'scheduled')
    .where('status', '=', 'done')
    .where('finishedAt', '<', olderThan);
  const r = await db.deleteFrom('refreshRunUsers').where('runId', 'in', old).executeTakeFirst();
  return Number(r.numDeletedRows ?? 0);
}

// ------------------------------------------------------------------ link expiry

/**
 * Marks active links older than the lifetime expired and flags their customers "link expired —
 * resend" while they have not started (LINK_ISSUED). Expiry is a flag, never a state change
 * (state machine: LINK_EXPIRED is a no-op). Batched; each batch is one transaction.
 */
export async function expireLinks(
  db: Kysely<Database>,
  lifetimeMs: number,
  now = Date.now(),
): Promise<{ linksExpired: number; usersFlagged: number; userIds: string[] }> {
  const before = new Date(now - lifetimeMs).toISOString();
  let linksExpired = 0;
  const flagged = new Set<string>();
  for (;;) {
    const batch = await db
      .selectFrom('kycLinks')
      .select(['id', 'userId'])
      .where('status', '=', 'active')
      .where('createdAt', '<', before)
      .orderBy('createdAt')
      .limit(500)
      .execute();
    if (!batch.length) break;
    const at = nowIso();
    const ids = batch.map((b) => b.id);
    const users = [...new Set(batch.map((b) => b.userId))];
    await db.transaction().execute(async (x) => {
      // The status guard keeps a link superseded meanwhile (new link issued) superseded.
      const r = await x
        .updateTable('kycLinks')
        .set({ status: 'expired', endedAt: at })
        .where('id', 'in', ids)
        .where('status', '=', 'active')
        .executeTakeFirst();
      linksExpired += Number(r.numUpdatedRows ?? 0);
      // Flag only customers whose newest link is now expired and who have not started.
      const toFlag = await x
        .selectFrom('users')
        .select('id')
        .where('id', 'in', users)
        .where('kycState', '=', 'LINK_ISSUED')
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('kycLinks as l')
                .select(sql<number>`1`.as('one'))
                .whereRef('l.userId', '=', 'users.id')
                .where('l.status', '=', 'active'),
            ),
          ),
        )
        .execute();
      if (toFlag.length) {
        await x
          .updateTable('users')
          .set({ linkExpired: 1, updatedAt: at })
          .where(
            'id',
            'in',
            toFlag.map((u) => u.id),
          )
          .execute();
        for (const u of toFlag) flagged.add(u.id);
      }
    });
  }
  return { linksExpired, usersFlagged: flagged.size, userIds: [...flagged] };
}

export async function linkExpiredUsers(
  db: Executor,
  limit = 50,
): Promise<Array<{ id: string; externalUserId: string; email: string; kycStateChangedAt: string }>> {
  return db
    .selectFrom('users')
    .select(['id', 'externalUserId', 'email', 'kycStateChangedAt'])
    .where('linkExpired', '=', 1)
    .where('kycState', '=', 'LINK_ISSUED')
    .orderBy('kycStateChangedAt', 'asc')
    .limit(limit)
    .execute();
}

export async function countLinkExpired(db: Executor): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('linkExpired', '=', 1)
    .where('kycState', '=', 'LINK_ISSUED')
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

export async function unmappedUsers(
  db: Executor,
  limit = 50,
): Promise<
  Array<{ id: string; externalUserId: string; kycState: KycState; unmappedResult: string | null; capaConfirmedAt: string | null }>
> {
  return db
    .selectFrom('users')
    .select(['id', 'externalUserId', 'kycState', 'unmappedResult', 'capaConfirmedAt'])
    .where('unmappedResult', 'is not', null)
    .orderBy('capaConfirmedAt', 'desc')
    .limit(limit)
    .execute();
}
