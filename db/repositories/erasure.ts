import { randomUUID } from 'node:crypto';
import { nowIso } from '../../lib/time.js';
import { kindOf, type Executor } from '../client.js';
import type { Erasure, KycState, User } from '../schema.js';

/**
 * Erasing one customer's personal data, everywhere the database keeps it, in one transaction.
 * What stays is a tombstone: the user row (its id, type, country, state and dates — nothing that
 * names a person), the state history without its free-text reasons, case ids and statuses, and
 * the audit log, whose rows name customers by id only (detail holds codes, counts and job ids),
 * so its hash chain verifies unchanged.
 */

export type ErasureReport = Record<string, number>;

const n = (r: { numUpdatedRows?: bigint; numDeletedRows?: bigint }[] | { numUpdatedRows?: bigint; numDeletedRows?: bigint }) =>
  (Array.isArray(r) ? r : [r]).reduce((s, x) => s + Number(x.numUpdatedRows ?? x.numDeletedRows ?? 0), 0);

export async function eraseCustomerData(db: Executor, userId: string, at = nowIso()): Promise<ErasureReport> {
  const report: ErasureReport = {};
  const before = await db.selectFrom('users').select('externalUserId').where('id', '=', userId).executeTakeFirst();
  // The Capa-create claim is keyed by our external id (jobs/capa-create.ts); other claims by ids.
  report.idempotency = before
    ? n(await db.deleteFrom('idempotency').where('key', '=', `capa-create:${before.externalUserId}`).executeTakeFirst())
    : 0;
  report.users = n(
    await db
      .updateTable('users')
      .set({
        email: `erased-${userId}@erased.invalid`,
        externalUserId: `erased:${userId}`,
        alias: null,
        capaUserId: null,
        kycStateReason: null,
        capaSyncError: null,
        unmappedResult: null,
        erasedAt: at,
        updatedAt: at,
      })
      .where('id', '=', userId)
      .executeTakeFirst(),
  );
  report.kyc_details = n(await db.deleteFrom('kycDetails').where('userId', '=', userId).executeTakeFirst());
  report.kyc_links = n(
    await db.updateTable('kycLinks').set({ url: '', redirectUri: null }).where('userId', '=', userId).executeTakeFirst(),
  );
  report.notifications = n(
    await db
      .updateTable('notifications')
      .set({ address: '', linkUrl: null, subject: null, failureReason: null, lastError: null, providerMessageId: null })
      .where('userId', '=', userId)
      .executeTakeFirst(),
  );
  report.case_notes = n(await db.updateTable('caseNotes').set({ body: '' }).where('userId', '=', userId).executeTakeFirst());
  report.case_tasks = n(await db.updateTable('caseTasks').set({ title: '' }).where('userId', '=', userId).executeTakeFirst());
  report.case_events = n(await db.updateTable('caseEvents').set({ detail: null }).where('userId', '=', userId).executeTakeFirst());
  report.state_changes = n(await db.updateTable('stateChanges').set({ reason: null }).where('userId', '=', userId).executeTakeFirst());
  report.webhook_inbox = n(
    await db
      .updateTable('webhookInbox')
      .set({ rawBody: '{}', headers: '{}', externalUserId: null, error: null })
      .where('userId', '=', userId)
      .executeTakeFirst(),
  );
  report.import_rows = n(
    await db
      .updateTable('importRows')
      .set({ email: null, externalUserId: null, alias: null, reason: null, capaUserId: null })
      .where('userId', '=', userId)
      .executeTakeFirst(),
  );
  report.job_runs = n(await db.updateTable('jobRuns').set({ error: null, result: null }).where('userId', '=', userId).executeTakeFirst());
  report.retry_programmes = n(
    await db.updateTable('retryProgrammes').set({ stopReason: null }).where('userId', '=', userId).executeTakeFirst(),
  );
  return report;
}

/**
 * The customer about to be erased, read inside the erasure's transaction. On PostgreSQL the row is
 * locked, so a legal hold or a state change committed meanwhile is seen (or waits for the erasure);
 * SQLite's write lock serializes writers already.
 */
export async function userForErasure(db: Executor, userId: string): Promise<User | undefined> {
  const q = db.selectFrom('users').selectAll().where('id', '=', userId);
  return (kindOf(db) === 'postgres' ? q.forUpdate() : q).executeTakeFirst();
}

export async function recordErasure(
  db: Executor,
  input: {
    userId: string;
    kind: Erasure['kind'];
    reason: string;
    requestedBy: string | null;
    report: ErasureReport;
    at: string;
    runId?: string | null;
  },
): Promise<Erasure> {
  const row: Erasure = { id: randomUUID(), ...input, report: JSON.stringify(input.report), runId: input.runId ?? null };
  await db.insertInto('erasures').values(row).execute();
  return row;
}

export async function erasuresForUser(db: Executor, userId: string): Promise<Erasure[]> {
  return db.selectFrom('erasures').selectAll().where('userId', '=', userId).orderBy('at', 'desc').execute();
}

export async function setLegalHold(db: Executor, userId: string, on: boolean, reason: string | null): Promise<number> {
  const r = await db
    .updateTable('users')
    .set({ legalHold: on ? 1 : 0, legalHoldReason: on ? reason : null, updatedAt: nowIso() })
    .where('id', '=', userId)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Where a retention scan stopped: the last customer it handed out, in (changed at, id) order. */
export interface RetentionCursor {
  kycStateChangedAt: string;
  id: string;
}

/**
 * Customers the retention policy is due to erase: in `state` since before `before`, not held, not
 * yet erased, oldest first, a page at a time after `after` (a customer whose erasure failed is not
 * handed out again by the same scan).
 */
export async function dueForRetention(
  db: Executor,
  state: KycState,
  before: string,
  limit = 500,
  after?: RetentionCursor,
): Promise<RetentionCursor[]> {
  let q = db
    .selectFrom('users')
    .select(['id', 'kycStateChangedAt'])
    .where('kycState', '=', state)
    .where('kycStateChangedAt', '<', before)
    .where('legalHold', '=', 0)
    .where('erasedAt', 'is', null);
  if (after) {
    q = q.where((eb) =>
      eb.or([
        eb('kycStateChangedAt', '>', after.kycStateChangedAt),
        eb.and([eb('kycStateChangedAt', '=', after.kycStateChangedAt), eb('id', '>', after.id)]),
      ]),
    );
  }
  return q.orderBy('kycStateChangedAt', 'asc').orderBy('id', 'asc').limit(limit).execute();
}

/** Customers past their retention in `state` whom a legal hold keeps (not yet erased). */
export async function countHeldForRetention(db: Executor, state: KycState, before: string): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('kycState', '=', state)
    .where('kycStateChangedAt', '<', before)
    .where('legalHold', '=', 1)
    .where('erasedAt', 'is', null)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}
