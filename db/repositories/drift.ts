import { sql } from 'kysely';
import type { DriftEvent, KycState, StateChange } from '../schema.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

/**
 * The drift log: every time Get KYC Details showed a state different from ours and the
 * state machine applied it. The source of truth is state_changes.drift = 1 (written in the same
 * transaction as the change); this table adds what an operator needs to judge it — was, now, the
 * job that noticed, what asked for the poll, and which webhook we most likely missed.
 */

type KycEventName = 'CREATED_KYC' | 'VERIFIED_USER' | 'REJECTED_KYC' | 'REVIEW_NEEDED_KYC';

const OUTCOME_EVENT: Partial<Record<KycState, KycEventName>> = {
  VERIFIED: 'VERIFIED_USER',
  REJECTED: 'REJECTED_KYC',
  REVIEW_NEEDED: 'REVIEW_NEEDED_KYC',
};

/**
 * The webhooks Capa would have sent for us to get from `was` to `now` on our own. A customer still
 * at LINK_ISSUED (or NOT_STARTED) also missed CREATED_KYC, which every submission emits first.
 */
export function missedEventsFor(was: KycState, now: KycState): KycEventName[] {
  const out: KycEventName[] = [];
  if ((was === 'NOT_STARTED' || was === 'LINK_ISSUED') && now !== 'NOT_STARTED' && now !== 'LINK_ISSUED') out.push('CREATED_KYC');
  const outcome = OUTCOME_EVENT[now];
  if (outcome) out.push(outcome);
  return out;
}

/** What our inbox holds for each missed event: the likely reason the state did not move on its own. */
async function evidenceFor(db: Executor, userId: string, events: KycEventName[], at: string): Promise<string | null> {
  if (!events.length) return null;
  const user = await db.selectFrom('users').select('externalUserId').where('id', '=', userId).executeTakeFirst();
  if (!user) return null;
  const rows = await db
    .selectFrom('webhookInbox')
    .select(['id', 'eventName', 'status', 'signatureVerdict', 'effect', 'receivedAt'])
    .where('externalUserId', '=', user.externalUserId)
    .where('eventName', 'in', events)
    .where('receivedAt', '<=', at)
    .orderBy('id', 'desc')
    .limit(50)
    .execute();
  return events
    .map((e) => {
      const got = rows.filter((r) => r.eventName === e);
      if (!got.length) return `${e}: never received (dropped by Capa after its retries, or not sent yet)`;
      const valid = got.find((r) => r.signatureVerdict === 'valid');
      if (!valid) return `${e}: received only with a bad signature (#${got[0]!.id}, ${got[0]!.signatureVerdict})`;
      if (valid.status === 'received') return `${e}: received (#${valid.id}) but not processed yet when polled`;
      return `${e}: received (#${valid.id}, ${valid.status}${valid.effect ? `, ${valid.effect}` : ''}) — likely late or out of order`;
    })
    .join('; ');
}

function runIdOf(triggeredBy: string | null): number | null {
  const m = /^refresh:(\d+)$/.exec(triggeredBy ?? '');
  return m ? Number(m[1]) : null;
}

/** Records the drift entry of one drifting state change (idempotent on the state change id). */
export async function recordDriftForStateChange(db: Executor, sc: StateChange, jobName = 'fetch-details'): Promise<void> {
  const missed = missedEventsFor(sc.fromState, sc.toState);
  const evidence = await evidenceFor(db, sc.userId, missed, sc.at);
  // fetch-details passes its cause as the state change's reason: refresh:<run>, webhook:<id>, …
  const triggeredBy = sc.reason && sc.reason !== 'details fetched' ? sc.reason.slice(0, 200) : null;
  await db
    .insertInto('driftEvents')
    .values({
      userId: sc.userId,
      stateChangeId: sc.id,
      detectedAt: sc.at,
      wasState: sc.fromState,
      nowState: sc.toState,
      applied: 1,
      jobName,
      jobId: sc.causeId,
      triggeredBy,
      runId: runIdOf(triggeredBy),
      missedEvents: missed.length ? missed.join(',') : null,
      evidence,
    })
    .onConflict((oc) => oc.column('stateChangeId').doNothing())
    .execute();
}

/**
 * Writes the missing drift entries (of one customer, or of everyone): the job hook records them at
 * once; this catches any the hook could not (a crash between the state change and the hook).
 */
export async function backfillDrift(db: Executor, opts: { userId?: string; limit?: number } = {}): Promise<number> {
  let q = db
    .selectFrom('stateChanges as sc')
    .leftJoin('driftEvents as d', 'd.stateChangeId', 'sc.id')
    .selectAll('sc')
    .where('sc.drift', '=', 1)
    .where('d.id', 'is', null)
    .orderBy('sc.id')
    .limit(opts.limit ?? 1000);
  if (opts.userId) q = q.where('sc.userId', '=', opts.userId);
  const rows = (await q.execute()) as StateChange[];
  for (const sc of rows) await recordDriftForStateChange(db, sc);
  return rows.length;
}

export interface DriftDay {
  day: string;
  count: number;
  customers: number;
}

/** Drift entries per UTC day (ISO text timestamps: the day is the first 10 characters). */
export async function driftCountsPerDay(db: Executor, opts: { days?: number; now?: number } = {}): Promise<DriftDay[]> {
  const since = new Date((opts.now ?? Date.now()) - (opts.days ?? 30) * 86_400_000).toISOString().slice(0, 10);
  const day = sql<string>`substr(detected_at, 1, 10)`;
  const rows = await db
    .selectFrom('driftEvents')
    .select((eb) => [day.as('day'), eb.fn.countAll().as('count'), eb.fn.count('userId').distinct().as('customers')])
    .where('detectedAt', '>=', since)
    .groupBy(day)
    .orderBy(day, 'desc')
    .execute();
  return rows.map((r) => ({ day: String(r.day), count: Number(r.count), customers: Number(r.customers) }));
}

export async function driftTransitions(
  db: Executor,
  opts: { since: string },
): Promise<Array<{ wasState: KycState; nowState: KycState; count: number }>> {
  const rows = await db
    .selectFrom('driftEvents')
    .select((eb) => ['wasState', 'nowState', eb.fn.countAll().as('count')])
    .where('detectedAt', '>=', opts.since)
    .groupBy(['wasState', 'nowState'])
    .execute();
  return rows.map((r) => ({ wasState: r.wasState, nowState: r.nowState, count: Number(r.count) })).sort((a, b) => b.count - a.count);
}

export interface DriftRow extends DriftEvent {
  externalUserId: string;
  email: string;
  currentState: KycState;
}

export const DRIFT_SORTABLE = ['detectedAt', 'wasState', 'nowState'] as const;
export type DriftSort = (typeof DRIFT_SORTABLE)[number];

/** One page of drift entries, newest first by default; `day` (YYYY-MM-DD) filters to one UTC day. */
export async function listDrift(
  db: Executor,
  q: { day?: string | null; nowState?: KycState | null; sort?: DriftSort; dir?: 'asc' | 'desc'; page: number; pageSize: number },
): Promise<{ rows: DriftRow[]; total: number }> {
  let base = db.selectFrom('driftEvents as d').innerJoin('users as u', 'u.id', 'd.userId');
  if (q.day) base = base.where('d.detectedAt', '>=', `${q.day}T00:00:00.000Z`).where('d.detectedAt', '<=', `${q.day}T23:59:59.999Z`);
  if (q.nowState) base = base.where('d.nowState', '=', q.nowState);
  const sort = q.sort ?? 'detectedAt';
  const dir = q.dir ?? 'desc';
  const [rows, total] = await Promise.all([
    base
      .selectAll('d')
      .select(['u.externalUserId', 'u.email', 'u.kycState as currentState'])
      .orderBy(`d.${sort}`, dir)
      .orderBy('d.id', dir)
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize)
      .execute(),
    base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirst(),
  ]);
  return { rows: rows as DriftRow[], total: Number(total?.n ?? 0) };
}

export async function driftForUser(db: Executor, userId: string): Promise<DriftEvent[]> {
  return db.selectFrom('driftEvents').selectAll().where('userId', '=', userId).orderBy('id', 'desc').limit(200).execute();
}

/** The drift a refresh run found, newest first, with each customer's external id. */
export async function driftForRun(db: Executor, runId: number, limit = 100) {
  return db
    .selectFrom('driftEvents as d')
    .innerJoin('users as u', 'u.id', 'd.userId')
    .select(['d.id', 'd.userId', 'u.externalUserId', 'd.wasState', 'd.nowState', 'd.missedEvents', 'd.detectedAt'])
    .where('d.runId', '=', runId)
    .orderBy('d.id', 'desc')
    .limit(limit)
    .execute();
}

export async function countDriftSince(db: Executor, since: string = nowIso().slice(0, 10)): Promise<number> {
  const r = await db
    .selectFrom('driftEvents')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('detectedAt', '>=', since)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}
