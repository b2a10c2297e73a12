import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type {
  Database,
  KycState,
  NewNotification,
  Notification,
  NotificationChannelName,
  NotificationKind,
  NotificationLocale,
  NotificationStatus,
  RetryProgramme,
} from '../schema.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';
import { coalescedRead } from '../coalesce.js';

/**
 * The notification ledger and the retry programmes. Every message KYC Desk means to send is a
 * row here before anything is queued or sent; the row's status is the truth the UI shows and
 * what the send job checks before it sends (a retried or duplicated job never sends twice).
 */

export interface NewMessageInput {
  /** The customer; null for a message about an alert (its recipient is an operator or a webhook). */
  userId: string | null;
  /** The alert a message is about. */
  alertId?: string | null;
  kind: NotificationKind;
  channel: NotificationChannelName;
  locale: NotificationLocale;
  address: string;
  dedupeKey: string;
  programmeId?: string | null;
  step?: number | null;
  linkId?: string | null;
  linkUrl?: string | null;
  linkRequestId?: string | null;
  cause?: string | null;
  createdBy?: string | null;
  /** Recorded straight away as failed (e.g. no usable address): the ledger still shows it. */
  failWith?: string | null;
}

/**
 * Inserts a message unless one with the same dedupe key exists; returns the row either way
 * and whether it was created now.
 */
export async function insertMessage(db: Executor, input: NewMessageInput): Promise<{ row: Notification; created: boolean }> {
  const now = nowIso();
  const row: NewNotification = {
    id: randomUUID(),
    userId: input.userId,
    kind: input.kind,
    channel: input.channel,
    locale: input.locale,
    address: input.address,
    dedupeKey: input.dedupeKey,
    programmeId: input.programmeId ?? null,
    step: input.step ?? null,
    linkId: input.linkId ?? null,
    linkUrl: input.linkUrl ?? null,
    linkRequestId: input.linkRequestId ?? null,
    status: input.failWith ? 'failed' : 'queued',
    failureReason: input.failWith ?? null,
    lastError: null,
    subject: null,
    providerMessageId: null,
    cause: input.cause ?? null,
    createdBy: input.createdBy ?? null,
    createdAt: now,
    updatedAt: now,
    enqueuedAt: null,
    lastAttemptAt: null,
    sentAt: null,
    failedAt: input.failWith ? now : null,
    cancelledAt: null,
    alertId: input.alertId ?? null,
  };
  const ins = await db
    .insertInto('notifications')
    .values(row)
    .onConflict((oc) => oc.column('dedupeKey').doNothing())
    .executeTakeFirst();
  const created = Number(ins.numInsertedOrUpdatedRows ?? 0) > 0;
  const stored = await db.selectFrom('notifications').selectAll().where('dedupeKey', '=', input.dedupeKey).executeTakeFirstOrThrow();
  return { row: stored, created };
}

export async function getMessage(db: Executor, id: string): Promise<Notification | undefined> {
  return db.selectFrom('notifications').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The customer of each message named (messages that do not exist are left out). */
export async function usersOfMessages(db: Executor, ids: string[]): Promise<Array<Pick<Notification, 'id' | 'userId'>>> {
  if (ids.length === 0) return [];
  return db.selectFrom('notifications').select(['id', 'userId']).where('id', 'in', ids).execute();
}

/** Every message for one customer, newest first (the user page's timeline reads this). */
export async function notificationsForUser(db: Executor, userId: string, limit = 200): Promise<Notification[]> {
  return db
    .selectFrom('notifications')
    .selectAll()
    .where('userId', '=', userId)
    .orderBy('createdAt', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

export async function messagesAwaitingLink(db: Executor, linkRequestId: string): Promise<Notification[]> {
  return db.selectFrom('notifications').selectAll().where('linkRequestId', '=', linkRequestId).where('status', '=', 'queued').execute();
}

export async function attachLink(db: Executor, id: string, link: { id: string; url: string }): Promise<boolean> {
  const r = await db
    .updateTable('notifications')
    .set({ linkId: link.id, linkUrl: link.url, linkRequestId: null, updatedAt: nowIso() })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function markEnqueued(db: Executor, id: string): Promise<void> {
  await db.updateTable('notifications').set({ enqueuedAt: nowIso() }).where('id', '=', id).execute();
}

/**
 * Counts an attempt (and records the subject it is sent with, when it has one); false when the row
 * is no longer queued (someone settled it meanwhile).
 */
export async function beginAttempt(db: Executor, id: string, subject: string | null = null): Promise<boolean> {
  const now = nowIso();
  const r = await db
    .updateTable('notifications')
    .set({ attempts: sql`attempts + 1`, lastAttemptAt: now, updatedAt: now, ...(subject !== null ? { subject } : {}) })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function markSent(db: Executor, id: string, r: { subject: string | null; providerMessageId: string | null }): Promise<void> {
  const now = nowIso();
  await db
    .updateTable('notifications')
    .set({
      status: 'sent',
      sentAt: now,
      updatedAt: now,
      subject: r.subject,
      providerMessageId: r.providerMessageId,
      lastError: null,
      failureReason: null,
    })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .execute();
}

export async function markFailed(db: Executor, id: string, reason: string): Promise<boolean> {
  const now = nowIso();
  const r = await db
    .updateTable('notifications')
    .set({ status: 'failed', failureReason: reason.slice(0, 1000), failedAt: now, updatedAt: now })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function recordTransientError(db: Executor, id: string, error: string): Promise<void> {
  await db
    .updateTable('notifications')
    .set({ lastError: error.slice(0, 1000), updatedAt: nowIso() })
    .where('id', '=', id)
    .execute();
}

export async function cancelMessage(db: Executor, id: string, reason: string): Promise<boolean> {
  const now = nowIso();
  const r = await db
    .updateTable('notifications')
    .set({ status: 'cancelled', failureReason: reason, cancelledAt: now, updatedAt: now })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function cancelProgrammeMessages(db: Executor, programmeId: string, reason: string): Promise<number> {
  const now = nowIso();
  const r = await db
    .updateTable('notifications')
    .set({ status: 'cancelled', failureReason: reason, cancelledAt: now, updatedAt: now })
    .where('programmeId', '=', programmeId)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

// Idempotency claims are read in idempotency.ts; these names stay for the notification jobs.
export { claimTouchedAt, peekClaim } from './idempotency.js';

export async function lastProgrammeMessage(db: Executor, programmeId: string): Promise<Notification | undefined> {
  return db
    .selectFrom('notifications')
    .selectAll()
    .where('programmeId', '=', programmeId)
    .orderBy('step', 'desc')
    .orderBy('createdAt', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function queuedMessagesForUser(db: Executor, userId: string): Promise<Notification[]> {
  return db.selectFrom('notifications').selectAll().where('userId', '=', userId).where('status', '=', 'queued').execute();
}

/** Queued messages that need (re)queuing: never queued, or queued long ago and still not settled. */
export async function messagesToRelay(db: Executor, opts: { staleBefore: string; limit: number }): Promise<Notification[]> {
  return db
    .selectFrom('notifications')
    .selectAll()
    .where('status', '=', 'queued')
    .where('linkRequestId', 'is', null)
    .where((eb) => eb.or([eb('enqueuedAt', 'is', null), eb('enqueuedAt', '<', opts.staleBefore)]))
    .orderBy('createdAt', 'asc')
    .limit(opts.limit)
    .execute();
}

/** A message to a customer (every message but an alert's). */
export type CustomerMessage = Notification & { userId: string };

/** Messages waiting for a KYC link: customer messages only (alert messages never need one). */
export async function messagesWaitingForLinks(db: Executor, limit = 500): Promise<CustomerMessage[]> {
  const rows = await db
    .selectFrom('notifications')
    .selectAll()
    .where('status', '=', 'queued')
    .where('linkRequestId', 'is not', null)
    .orderBy('createdAt', 'asc')
    .limit(limit)
    .execute();
  return rows as CustomerMessage[];
}

// ------------------------------------------------------------------ listing (/notifications)

export interface MessageListQuery {
  status?: NotificationStatus | null;
  kind?: NotificationKind | null;
  channel?: NotificationChannelName | null;
  userId?: string | null;
  /** Customer e-mail or external id (prefix), or the address a message went to. */
  q?: string | null;
  from?: string | null;
  to?: string | null;
  sort: 'createdAt' | 'status' | 'kind' | 'attempts';
  dir: 'asc' | 'desc';
  page: number;
  pageSize: number;
}

/** A ledger row with its customer; an alert message has none (both fields absent). */
export interface MessageListRow extends Notification {
  externalUserId?: string;
  kycState?: KycState;
}

export async function listMessages(db: Executor, q: MessageListQuery): Promise<{ rows: MessageListRow[]; total: number }> {
  // Left join: alert messages (to operators and webhooks) have no customer and are listed too.
  let base = db.selectFrom('notifications as n').leftJoin('users as u', 'u.id', 'n.userId');
  if (q.status) base = base.where('n.status', '=', q.status);
  if (q.kind) base = base.where('n.kind', '=', q.kind);
  if (q.channel) base = base.where('n.channel', '=', q.channel);
  if (q.userId) base = base.where('n.userId', '=', q.userId);
  if (q.from) base = base.where('n.createdAt', '>=', q.from);
  if (q.to) base = base.where('n.createdAt', '<=', q.to);
  if (q.q) {
    const term = q.q.trim().toLowerCase();
    base = base.where((eb) =>
      eb.or([eb('u.email', '=', term), eb('n.address', '=', term), eb('u.externalUserId', '=', q.q!.trim()), eb('n.id', '=', q.q!.trim())]),
    );
  }
  const totalRow = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  const sortCol = { createdAt: 'n.createdAt', status: 'n.status', kind: 'n.kind', attempts: 'n.attempts' }[q.sort] as 'n.createdAt';
  const rows = await base
    .selectAll('n')
    .select(['u.externalUserId', 'u.kycState'])
    .orderBy(sortCol, q.dir)
    .orderBy('n.createdAt', 'desc')
    .orderBy('n.id', 'desc')
    .limit(q.pageSize)
    .offset((q.page - 1) * q.pageSize)
    .execute();
  return {
    rows: rows.map(({ externalUserId, kycState, ...n }) => ({ ...n, ...(externalUserId ? { externalUserId, kycState: kycState! } : {}) })),
    total: Number(totalRow?.n ?? 0),
  };
}

export async function countsByStatus(db: Executor): Promise<Record<NotificationStatus, number>> {
  const rows = await db
    .selectFrom('notifications')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('status')
    .execute();
  const out: Record<NotificationStatus, number> = { queued: 0, sent: 0, failed: 0, cancelled: 0 };
  for (const r of rows) out[r.status] = Number(r.n);
  return out;
}

// ------------------------------------------------------------------ retry programmes

export async function insertProgramme(
  db: Executor,
  input: { userId: string; rejectedAt: string; cadenceDays: number[]; firstDueAt: string | null; now?: string },
): Promise<{ programme: RetryProgramme; created: boolean }> {
  const now = input.now ?? nowIso();
  const row: RetryProgramme = {
    id: randomUUID(),
    userId: input.userId,
    rejectedAt: input.rejectedAt,
    status: 'active',
    stopReason: null,
    stoppedBy: null,
    stoppedAt: null,
    cadenceDays: JSON.stringify(input.cadenceDays),
    nextStep: 1,
    nextDueAt: input.firstDueAt,
    reinvitedAt: null,
    resubmittedAt: null,
    verifiedAt: null,
    createdAt: now,
    updatedAt: now,
  };
  const ins = await db
    .insertInto('retryProgrammes')
    .values(row)
    .onConflict((oc) => oc.columns(['userId', 'rejectedAt']).doNothing())
    .executeTakeFirst();
  const created = Number(ins.numInsertedOrUpdatedRows ?? 0) > 0;
  const programme = await db
    .selectFrom('retryProgrammes')
    .selectAll()
    .where('userId', '=', input.userId)
    .where('rejectedAt', '=', input.rejectedAt)
    .executeTakeFirstOrThrow();
  return { programme, created };
}

export async function getProgramme(db: Executor, id: string): Promise<RetryProgramme | undefined> {
  return db.selectFrom('retryProgrammes').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function programmesForUser(db: Executor, userId: string): Promise<RetryProgramme[]> {
  return db.selectFrom('retryProgrammes').selectAll().where('userId', '=', userId).orderBy('createdAt', 'desc').execute();
}

export async function activeProgrammesForUser(db: Executor, userId: string): Promise<RetryProgramme[]> {
  return db.selectFrom('retryProgrammes').selectAll().where('userId', '=', userId).where('status', '=', 'active').execute();
}

/** Stops a programme and cancels its unsent messages (one transaction). False if not active. */
export async function stopProgramme(
  trx: Transaction<Database>,
  id: string,
  reason: string,
  by: string | null,
  now = nowIso(),
): Promise<boolean> {
  const r = await trx
    .updateTable('retryProgrammes')
    .set({ status: 'stopped', stopReason: reason, stoppedBy: by, stoppedAt: now, nextDueAt: null, updatedAt: now })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return false;
  await cancelProgrammeMessages(trx, id, `programme stopped: ${reason}`);
  return true;
}

/** Moves a programme to its next step; `nextDueAt` null with finished=true ends it. */
export async function advanceProgramme(
  db: Executor,
  id: string,
  fromStep: number,
  next: { step: number; dueAt: string | null },
  now = nowIso(),
): Promise<boolean> {
  const r = await db
    .updateTable('retryProgrammes')
    .set({
      nextStep: next.step,
      nextDueAt: next.dueAt,
      updatedAt: now,
      ...(next.dueAt === null ? { status: 'finished' as const, stopReason: 'all follow-ups sent', stoppedAt: now } : {}),
    })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .where('nextStep', '=', fromStep)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function dueProgrammes(db: Executor, now: string, limit = 500): Promise<RetryProgramme[]> {
  return db
    .selectFrom('retryProgrammes')
    .selectAll()
    .where('status', '=', 'active')
    .where('nextDueAt', '<=', now)
    .orderBy('nextDueAt', 'asc')
    .limit(limit)
    .execute();
}

export async function markReinvited(db: Executor, programmeId: string, at = nowIso()): Promise<void> {
  await db
    .updateTable('retryProgrammes')
    .set({ reinvitedAt: at, updatedAt: at })
    .where('id', '=', programmeId)
    .where('reinvitedAt', 'is', null)
    .execute();
}

/**
 * Whether the customer ever had a retry programme, and whether a message to them is still
 * queued: what a state change may have to act on. Most customers have neither. Calls made
 * together share one query (a worker runs a batch's hooks at once).
 */
export const notificationsPendingFor = coalescedRead<string, { programme: boolean; queued: boolean }>(
  async (db, userIds) => {
    const [programmes, queued] = await Promise.all([
      db.selectFrom('retryProgrammes').select('userId').distinct().where('userId', 'in', userIds).execute(),
      db.selectFrom('notifications').select('userId').distinct().where('userId', 'in', userIds).where('status', '=', 'queued').execute(),
    ]);
    const out = new Map<string, { programme: boolean; queued: boolean }>();
    for (const id of userIds) out.set(id, { programme: false, queued: false });
    for (const r of programmes) out.get(r.userId)!.programme = true;
    for (const r of queued) if (r.userId) out.get(r.userId)!.queued = true;
    return out;
  },
  { programme: false, queued: false },
);

/** The latest programme's outcome columns follow the customer after a re-invitation. */
export async function recordProgrammeOutcome(db: Executor, userId: string, to: KycState, at = nowIso()): Promise<void> {
  const latest = await db
    .selectFrom('retryProgrammes')
    .select(['id', 'resubmittedAt', 'verifiedAt', 'reinvitedAt'])
    .where('userId', '=', userId)
    .orderBy('createdAt', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!latest || !latest.reinvitedAt) return;
  const progressed = to === 'IN_PROGRESS' || to === 'VERIFIED' || to === 'REVIEW_NEEDED' || to === 'REJECTED';
  const set: { resubmittedAt?: string; verifiedAt?: string; updatedAt: string } = { updatedAt: at };
  if (progressed && !latest.resubmittedAt) set.resubmittedAt = at;
  if (to === 'VERIFIED' && !latest.verifiedAt) set.verifiedAt = at;
  if (set.resubmittedAt || set.verifiedAt) await db.updateTable('retryProgrammes').set(set).where('id', '=', latest.id).execute();
}

/** Users rejected since `since` with no programme for that rejection (the sweep's safety net). */
export async function rejectionsWithoutProgramme(
  db: Executor,
  since: string,
  limit = 200,
): Promise<Array<{ id: string; kycStateChangedAt: string }>> {
  return db
    .selectFrom('users as u')
    .leftJoin('retryProgrammes as p', (j) => j.onRef('p.userId', '=', 'u.id').onRef('p.rejectedAt', '=', 'u.kycStateChangedAt'))
    .select(['u.id', 'u.kycStateChangedAt'])
    .where('u.kycState', '=', 'REJECTED')
    .where('u.type', '=', 'INDIVIDUAL')
    .where('u.kycStateChangedAt', '>=', since)
    .where('p.id', 'is', null)
    .limit(limit)
    .execute();
}

/** Active programmes whose customer has moved on (missed hook): the sweep stops them. */
export async function programmesOvertaken(db: Executor, limit = 500): Promise<Array<{ id: string; kycState: KycState }>> {
  return db
    .selectFrom('retryProgrammes as p')
    .innerJoin('users as u', 'u.id', 'p.userId')
    .select(['p.id', 'u.kycState'])
    .where('p.status', '=', 'active')
    .where('u.kycState', 'in', ['IN_PROGRESS', 'VERIFIED', 'REVIEW_NEEDED'])
    .limit(limit)
    .execute();
}

export interface Conversion {
  rejected: number;
  reinvited: number;
  resubmitted: number;
  verified: number;
  active: number;
  stoppedByOperator: number;
}

/** rejected → re-invited → resubmitted → verified, over programmes started in [from, to]. */
export async function conversion(db: Executor, range: { from?: string | null; to?: string | null } = {}): Promise<Conversion> {
  let q = db.selectFrom('retryProgrammes');
  if (range.from) q = q.where('createdAt', '>=', range.from);
  if (range.to) q = q.where('createdAt', '<=', range.to);
  const r = await q
    .select((eb) => [
      eb.fn.countAll<number>().as('rejected'),
      eb.fn.count<number>('reinvitedAt').as('reinvited'),
      eb.fn.count<number>('resubmittedAt').as('resubmitted'),
      eb.fn.count<number>('verifiedAt').as('verified'),
      eb.fn.sum<number>(eb.case().when('status', '=', 'active').then(1).else(0).end()).as('active'),
      eb.fn.sum<number>(eb.case().when('stopReason', '=', 'operator').then(1).else(0).end()).as('stoppedByOperator'),
    ])
    .executeTakeFirst();
  return {
    rejected: Number(r?.rejected ?? 0),
    reinvited: Number(r?.reinvited ?? 0),
    resubmitted: Number(r?.resubmitted ?? 0),
    verified: Number(r?.verified ?? 0),
    active: Number(r?.active ?? 0),
    stoppedByOperator: Number(r?.stoppedByOperator ?? 0),
  };
}
