import { randomBytes, randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database, KycState, NewUser, User } from '../schema.js';
import { decide, type Decision, type KycSignal } from '../../domain/state-machine.js';
import { normalizeEmail } from '../../domain/email.js';
import { nowIso } from '../../lib/time.js';
import { kindOf, type Executor } from '../client.js';
import { lastReinvitations } from './links.js';
import { rowsAs } from '../rows.js';

// Kept for importers outside db/repositories; the type lives with the client.
export type { Executor };

export function generateExternalUserId(): string {
  return `kyc-${randomBytes(6).toString('hex')}`;
}

export interface CreateUserInput {
  externalUserId?: string | null;
  email: string;
  type: 'INDIVIDUAL' | 'BUSINESS';
  alias?: string | null;
  country?: 'MX' | 'DO' | null;
  createdBy?: string | null;
}

// The one normalisation (trimmed, Unicode NFC, lower-case) lives with the address rule.
export { normalizeEmail };

export async function insertUser(db: Executor, input: CreateUserInput): Promise<User> {
  const now = nowIso();
  const row: NewUser = {
    id: randomUUID(),
    externalUserId: input.externalUserId?.trim() || generateExternalUserId(),
    capaUserId: null,
    type: input.type,
    email: normalizeEmail(input.email),
    alias: input.alias?.trim() || null,
    country: input.country ?? null,
    kycState: 'NOT_STARTED',
    kycStateChangedAt: now,
    kycStateReason: 'created',
    kycStateCause: input.createdBy ? `operator:${input.createdBy}` : null,
    capaConfirmedAt: null,
    capaSync: 'pending',
    capaSyncError: null,
    unmappedResult: null,
    assigneeId: null,
    createdBy: input.createdBy ?? null,
    createdAt: now,
    updatedAt: now,
  };
  await db.insertInto('users').values(row).execute();
  return { ...row, linkExpired: 0 } as User;
}

export async function findUserById(db: Executor, id: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findUserByExternalId(db: Executor, externalUserId: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('externalUserId', '=', externalUserId).executeTakeFirst();
}

export async function findUserByEmail(db: Executor, email: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
}

/** Id and external id of each customer named, by id (customers that do not exist are left out). */
export async function externalIdsOf(db: Executor, ids: string[]): Promise<Array<Pick<User, 'id' | 'externalUserId'>>> {
  if (ids.length === 0) return [];
  return db.selectFrom('users').select(['id', 'externalUserId']).where('id', 'in', ids).execute();
}

/** Id and external id of the customer with this external id, if any (no personal data). */
export async function customerRefByExternalId(
  db: Executor,
  externalUserId: string,
): Promise<Pick<User, 'id' | 'externalUserId'> | undefined> {
  return db.selectFrom('users').select(['id', 'externalUserId']).where('externalUserId', '=', externalUserId).executeTakeFirst();
}

export async function markCapaCreated(db: Executor, id: string, capaUserId: string): Promise<void> {
  const now = nowIso();
  await db
    .updateTable('users')
    .set({ capaUserId, capaSync: 'created', capaSyncError: null, capaConfirmedAt: now, updatedAt: now })
    .where('id', '=', id)
    .execute();
}

export async function markCapaSyncFailed(db: Executor, id: string, error: string): Promise<void> {
  await db.updateTable('users').set({ capaSync: 'failed', capaSyncError: error, updatedAt: nowIso() }).where('id', '=', id).execute();
}

/**
 * A Get KYC Details answer whose verification result maps to no state: kept raw for a human (the
 * state is left alone), and it still counts as Capa confirming the customer.
 */
export async function markUnmappedResult(db: Executor, id: string, raw: string): Promise<void> {
  await db.updateTable('users').set({ unmappedResult: raw, capaConfirmedAt: nowIso() }).where('id', '=', id).execute();
}

/** A mappable answer clears an earlier unmapped one. */
export async function clearUnmappedResult(db: Executor, id: string): Promise<void> {
  await db.updateTable('users').set({ unmappedResult: null }).where('id', '=', id).execute();
}

export interface SignalCause {
  type: 'webhook' | 'poll' | 'operator' | 'job' | 'import' | 'system';
  id?: string | null;
  reason?: string | null;
}

export interface SignalOutcome {
  decision: Decision;
  from: KycState;
  to: KycState;
  changed: boolean;
  drift: boolean;
}

/** One signal for one customer, as applySignals takes them. */
export interface SignalInput {
  userId: string;
  signal: KycSignal;
  cause: SignalCause;
}

/**
 * Applies a signal through the state machine and records what caused the change. Must run
 * inside a transaction: the first read locks the user's row on PostgreSQL (FOR UPDATE), and SQLite
 * transactions hold the write lock from BEGIN IMMEDIATE, so two workers never decide on stale reads.
 */
export async function applySignal(
  trx: Transaction<Database>,
  userId: string,
  signal: KycSignal,
  cause: SignalCause,
): Promise<SignalOutcome> {
  return (await applySignals(trx, [{ userId, signal, cause }]))[0]!;
}

/**
 * applySignal for many customers at once, with a fixed number of statements however many there
 * are (a worker applies a batch of deliveries this way: on PostgreSQL each statement is a round
 * trip). Outcomes come back in the order given. Each customer may appear once: a second signal
 * for the same customer must see the first one's outcome, so callers apply it in a later call.
 * Throws, writing nothing, when a customer does not exist.
 */
export async function applySignals(trx: Transaction<Database>, items: SignalInput[]): Promise<SignalOutcome[]> {
  if (items.length === 0) return [];
  const ids = items.map((i) => i.userId);
  if (new Set(ids).size !== ids.length) throw new Error('applySignals: a customer may appear only once per call');
  const now = nowIso();
  const pg = kindOf(trx) === 'postgres';
  // SQLite transactions begin IMMEDIATE (db/client.ts): the write lock is already ours. On
  // PostgreSQL, lock the customers' rows (in id order, so two batches never wait on each other
  // in a cycle) so two workers never decide on the same stale read.
  const rows = await trx
    .selectFrom('users')
    .select(['id', 'kycState'])
    .where('id', 'in', ids)
    .$if(pg, (q) => q.orderBy('id').forUpdate())
    .execute();
  const stateOf = new Map(rows.map((r) => [r.id, r.kycState]));
  const missing = ids.find((id) => !stateOf.has(id));
  if (missing) throw new Error(`user ${missing} not found`);

  let decided = items.map((i) => ({ ...i, from: stateOf.get(i.userId)!, decision: decide(stateOf.get(i.userId)!, i.signal) }));
  // A re-invitation only ever holds a move back (the earlier verification's late webhook or
  // details), so it is read, under the lock, only for signals that would move the customer.
  const needReinvitation = decided.filter(
    (d) =>
      d.decision.effect === 'apply' && (d.signal.kind === 'WEBHOOK' || d.signal.kind === 'POLLED') && d.signal.reinvitation === undefined,
  );
  if (needReinvitation.length) {
    const reinvitations = await lastReinvitations(
      trx,
      needReinvitation.map((d) => d.userId),
    );
    decided = decided.map((d) => {
      if (!needReinvitation.includes(d)) return d;
      const signal = { ...d.signal, reinvitation: reinvitations.get(d.userId) ?? null } as KycSignal;
      return { ...d, signal, decision: decide(d.from, signal) };
    });
  }

  // One UPDATE for the customers left where they are and one for the customers moved (each row
  // rewritten once; for a change, its state indexes too).
  const moved = decided.filter((d) => d.decision.effect === 'apply');
  const kept = decided.filter((d) => d.decision.effect !== 'apply');
  for (const polled of [false, true]) {
    const touch = kept.filter((d) => (d.signal.kind === 'POLLED') === polled).map((d) => d.userId);
    if (touch.length === 0) continue;
    await trx
      .updateTable('users')
      .set({ updatedAt: now, ...(polled ? { capaConfirmedAt: now } : {}) })
      .where('id', 'in', touch)
      .execute();
  }
  const changes = moved.map((d) => ({
    userId: d.userId,
    to: (d.decision as { to: KycState }).to,
    reason: d.cause.reason ?? null,
    causeRef: d.cause.id ? `${d.cause.type}:${d.cause.id}` : d.cause.type,
    polled: d.signal.kind === 'POLLED',
  }));
  if (changes.length === 1) {
    const c = changes[0]!;
    await trx
      .updateTable('users')
      .set({
        updatedAt: now,
        ...(c.polled ? { capaConfirmedAt: now } : {}),
        kycState: c.to,
        kycStateChangedAt: now,
        kycStateReason: c.reason,
        kycStateCause: c.causeRef,
        ...(c.to === 'LINK_ISSUED' ? {} : { linkExpired: 0 }),
      })
      .where('id', '=', c.userId)
      .execute();
  } else if (changes.length > 1) {
    const v = rowsAs(
      kindOf(trx),
      'v',
      [
        { name: 'id', pg: 'text' },
        { name: 'to_state', pg: 'text' },
        { name: 'reason', pg: 'text' },
        { name: 'cause', pg: 'text' },
        { name: 'polled', pg: 'int' },
      ],
      changes.map((c) => [c.userId, c.to, c.reason, c.causeRef, c.polled ? 1 : 0]),
    );
    await sql`update users set
        updated_at = ${now},
        capa_confirmed_at = case when v.polled = 1 then ${now} else users.capa_confirmed_at end,
        kyc_state = v.to_state,
        kyc_state_changed_at = ${now},
        kyc_state_reason = v.reason,
        kyc_state_cause = v.cause,
        link_expired = case when v.to_state = 'LINK_ISSUED' then users.link_expired else 0 end
      from ${v}
      where users.id = v.id`.execute(trx);
  }
  if (moved.length) {
    await trx
      .insertInto('stateChanges')
      .values(
        moved.map((d) => ({
          userId: d.userId,
          at: now,
          fromState: d.from,
          toState: (d.decision as { to: KycState }).to,
          causeType: d.cause.type,
          causeId: d.cause.id ?? null,
          reason: d.cause.reason ?? null,
          drift: d.signal.kind === 'POLLED' ? 1 : 0,
        })),
      )
      .execute();
  }
  return decided.map((d) =>
    d.decision.effect === 'apply'
      ? { decision: d.decision, from: d.from, to: d.decision.to, changed: true, drift: d.signal.kind === 'POLLED' }
      : { decision: d.decision, from: d.from, to: d.from, changed: false, drift: false },
  );
}

/**
 * Locks the customer's row for a Get KYC Details answer and says whether another answer was
 * recorded since we asked: `confirmedAtWhenAsked` is the customer's `capaConfirmedAt` read before
 * the question (every recorded answer rewrites it; compared as a value, so workers' clocks do not
 * matter). Applying ours after a newer one could put an older truth back; the caller asks again.
 */
export async function pollAnswerSuperseded(
  trx: Transaction<Database>,
  userId: string,
  confirmedAtWhenAsked: string | null,
): Promise<boolean> {
  const row = await trx
    .selectFrom('users')
    .select(['capaConfirmedAt'])
    .where('id', '=', userId)
    .$if(kindOf(trx) === 'postgres', (q) => q.forUpdate())
    .executeTakeFirst();
  return Boolean(row) && (row!.capaConfirmedAt ?? null) !== confirmedAtWhenAsked;
}

export async function stateHistory(db: Executor, userId: string) {
  return db.selectFrom('stateChanges').selectAll().where('userId', '=', userId).orderBy('id', 'asc').execute();
}
