import { randomBytes, randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Database, KycState, NewUser, User } from '../schema.js';
import { decide, type Decision, type KycSignal } from '../../domain/state-machine.js';
import { normalizeEmail } from '../../domain/email.js';
import { nowIso } from '../../lib/time.js';
import { kindOf, type Executor } from '../client.js';
import { lastReinvitation } from './links.js';

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
  const now = nowIso();
  // SQLite transactions begin IMMEDIATE (db/client.ts): the write lock is already ours. On
  // PostgreSQL, lock the customer's row so two workers never decide on the same stale read.
  const user = await trx
    .selectFrom('users')
    .select(['kycState'])
    .where('id', '=', userId)
    .$if(kindOf(trx) === 'postgres', (q) => q.forUpdate())
    .executeTakeFirst();
  if (!user) throw new Error(`user ${userId} not found`);
  let decision = decide(user.kycState, signal);
  // A re-invitation only ever holds a move back (the earlier verification's late webhook or
  // details), so it is read, under the lock, only when the signal would move the customer.
  if (decision.effect === 'apply' && (signal.kind === 'WEBHOOK' || signal.kind === 'POLLED') && signal.reinvitation === undefined) {
    signal = { ...signal, reinvitation: (await lastReinvitation(trx, userId)) ?? null };
    decision = decide(user.kycState, signal);
  }
  const polled = signal.kind === 'POLLED';
  // One UPDATE per signal (each one rewrites the row and, for a change, its state indexes).
  const touched = { updatedAt: now, ...(polled ? { capaConfirmedAt: now } : {}) };
  if (decision.effect !== 'apply') {
    await trx.updateTable('users').set(touched).where('id', '=', userId).execute();
    return { decision, from: user.kycState, to: user.kycState, changed: false, drift: false };
  }
  const drift = polled;
  const causeRef = cause.id ? `${cause.type}:${cause.id}` : cause.type;
  await trx
    .updateTable('users')
    .set({
      ...touched,
      kycState: decision.to,
      kycStateChangedAt: now,
      kycStateReason: cause.reason ?? null,
      kycStateCause: causeRef,
      ...(decision.to === 'LINK_ISSUED' ? {} : { linkExpired: 0 }),
    })
    .where('id', '=', userId)
    .execute();
  await trx
    .insertInto('stateChanges')
    .values({
      userId,
      at: now,
      fromState: user.kycState,
      toState: decision.to,
      causeType: cause.type,
      causeId: cause.id ?? null,
      reason: cause.reason ?? null,
      drift: drift ? 1 : 0,
    })
    .execute();
  return { decision, from: user.kycState, to: decision.to, changed: true, drift };
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
