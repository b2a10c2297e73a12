import type { NewWebhookDelivery, WebhookDelivery, WebhookStatus } from '../schema.js';
import { isoAgo, nowIso } from '../../lib/time.js';
import { sql } from 'kysely';
import { kindOf, type Executor } from '../client.js';
import { rowsAs } from '../rows.js';

/** Capa retries a failed delivery for ~31 minutes; a same-body delivery inside this window is a duplicate. */
export const DUPLICATE_WINDOW_MS = 35 * 60 * 1000;

export async function insertDelivery(db: Executor, row: NewWebhookDelivery): Promise<number> {
  const r = await db.insertInto('webhookInbox').values(row).returning('id').executeTakeFirstOrThrow();
  return r.id;
}

/**
 * Stores deliveries in the order given and returns their ids in that order, with one INSERT per
 * run of up to 64 rows that name the same columns (SQLite has no DEFAULT in a VALUES list). Rows
 * are numbered in the order they are inserted (a sequence on PostgreSQL, an increasing rowid on
 * SQLite), while RETURNING promises no order: sorting a run's ids restores it.
 */
export async function insertDeliveries(db: Executor, rows: NewWebhookDelivery[]): Promise<number[]> {
  const ids: number[] = [];
  const columnsOf = (r: NewWebhookDelivery) => Object.keys(r).join();
  for (let i = 0; i < rows.length;) {
    let end = i + 1;
    while (end < rows.length && end - i < 64 && columnsOf(rows[end]!) === columnsOf(rows[i]!)) end++;
    const r = await db.insertInto('webhookInbox').values(rows.slice(i, end)).returning('id').execute();
    ids.push(...r.map((x) => x.id).sort((a, b) => a - b));
    i = end;
  }
  return ids;
}

/**
 * The dedupe keys among these that findOriginal could find an original for (a stored delivery with
 * that key inside the duplicate window of the earliest `receivedAt`). For the others it would
 * answer "none" without further reads: a batch whose keys are all new is stored without them.
 */
export async function keysWithPossibleOriginals(
  db: Executor,
  items: Array<{ dedupeKey: string; receivedAt: string }>,
): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  const earliest = Math.min(...items.map((i) => Date.parse(i.receivedAt)));
  const rows = await db
    .selectFrom('webhookInbox')
    .select('dedupeKey')
    .distinct()
    .where(
      'dedupeKey',
      'in',
      items.map((i) => i.dedupeKey),
    )
    .where('receivedAt', '>=', isoAgo(DUPLICATE_WINDOW_MS, earliest))
    .where('duplicateOf', 'is', null)
    // Written so no index is chosen for it: SQLite would otherwise walk every stored `received`
    // row instead of looking each key up in webhook_inbox_dedupe.
    .where(sql<boolean>`(${sql.ref('status')} || '') in ('received', 'processed', 'failed')`)
    .execute();
  return new Set(rows.map((r) => r.dedupeKey!));
}

/**
 * The delivery this one repeats, if any: the latest delivery with the same dedupe key inside the
 * duplicate window, unless the customer's journey moved on since then — a new KYC link was issued
 * or a different event arrived for the same customer. Then an identical body is a new event
 * (a customer retrying quickly after a rejection sends CREATED_KYC again) and must be processed.
 */
export async function findOriginal(db: Executor, dedupeKey: string, receivedAt: string): Promise<number | null> {
  const original = await db
    .selectFrom('webhookInbox')
    .select(['id', 'receivedAt', 'externalUserId'])
    .where('dedupeKey', '=', dedupeKey)
    .where('receivedAt', '>=', isoAgo(DUPLICATE_WINDOW_MS, Date.parse(receivedAt)))
    .where('duplicateOf', 'is', null)
    .where('status', 'in', ['received', 'processed', 'failed'])
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!original) return null;
  if (original.externalUserId) {
    const movedOn = await db
      .selectFrom('webhookInbox')
      .select('id')
      .where('externalUserId', '=', original.externalUserId)
      .where('id', '>', original.id)
      .where('dedupeKey', '<>', dedupeKey)
      .where('duplicateOf', 'is', null)
      // Not an index choice: SQLite would walk every valid delivery after the original
      // (webhook_inbox_verdict_id) instead of this customer's (webhook_inbox_ext).
      .where(sql<boolean>`(${sql.ref('signatureVerdict')} || '') = 'valid'`)
      .limit(1)
      .executeTakeFirst();
    if (movedOn) return null;
    const newLink = await db
      .selectFrom('kycLinks')
      .innerJoin('users', 'users.id', 'kycLinks.userId')
      .select('kycLinks.id')
      .where('users.externalUserId', '=', original.externalUserId)
      .where('kycLinks.createdAt', '>', original.receivedAt)
      .limit(1)
      .executeTakeFirst();
    if (newLink) return null;
  }
  return original.id;
}

export async function markEnqueued(db: Executor, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('webhookInbox').set({ enqueuedAt: nowIso() }).where('id', 'in', ids).execute();
}

/**
 * Rows stored but never queued (Redis was down, the intake skipped the direct add, or the process
 * died between store and enqueue), received at least `minAgeMs` ago so the intake's own add has
 * had its chance. With `staleQueuedMs`, also rows queued that long ago and still unprocessed.
 */
export async function findUnqueued(db: Executor, opts: { staleQueuedMs?: number; minAgeMs: number; limit: number }): Promise<number[]> {
  const rows = await db
    .selectFrom('webhookInbox')
    .select('id')
    .where('status', '=', 'received')
    .where('receivedAt', '<=', isoAgo(opts.minAgeMs))
    .where((eb) =>
      opts.staleQueuedMs === undefined
        ? eb('enqueuedAt', 'is', null)
        : eb.or([eb('enqueuedAt', 'is', null), eb('enqueuedAt', '<', isoAgo(opts.staleQueuedMs))]),
    )
    .orderBy('id', 'asc')
    .limit(opts.limit)
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Rows queued (or last checked by the relay) more than `olderThanMs` ago and still unprocessed,
 * longest unchecked first: the relay makes sure each still has a job that will run.
 */
export async function findQueuedBefore(db: Executor, opts: { olderThanMs: number; limit: number }): Promise<number[]> {
  const rows = await db
    .selectFrom('webhookInbox')
    .select('id')
    .where('status', '=', 'received')
    .where('enqueuedAt', '<', isoAgo(opts.olderThanMs))
    .orderBy('enqueuedAt', 'asc')
    .orderBy('id', 'asc')
    .limit(opts.limit)
    .execute();
  return rows.map((r) => r.id);
}

export async function getDelivery(db: Executor, id: number): Promise<WebhookDelivery | undefined> {
  return db.selectFrom('webhookInbox').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * What processing needs of each delivery named, with the id of the customer its external id
 * names (null when none): one query for a batch. Deliveries that do not exist are absent.
 */
export async function deliveriesToProcess(
  db: Executor,
  ids: number[],
): Promise<
  Map<number, Pick<WebhookDelivery, 'id' | 'status' | 'eventType' | 'eventName' | 'externalUserId'> & { customerId: string | null }>
> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('webhookInbox as w')
    .leftJoin('users as u', 'u.externalUserId', 'w.externalUserId')
    .select(['w.id', 'w.status', 'w.eventType', 'w.eventName', 'w.externalUserId', 'u.id as customerId'])
    .where('w.id', 'in', ids)
    .execute();
  return new Map(rows.map((r) => [r.id, { ...r, customerId: r.customerId ?? null }]));
}

export type DeliveryOutcome = Parameters<typeof settleDelivery>[2];

/** settleDelivery for many deliveries, in one statement. */
export async function settleDeliveries(db: Executor, items: Array<{ id: number; outcome: DeliveryOutcome }>): Promise<void> {
  if (items.length === 0) return;
  if (items.length === 1) return settleDelivery(db, items[0]!.id, items[0]!.outcome);
  const v = rowsAs(
    kindOf(db),
    'v',
    [
      { name: 'id', pg: 'int' },
      { name: 'status', pg: 'text' },
      { name: 'user_id', pg: 'text' },
      { name: 'state_from', pg: 'text' },
      { name: 'state_to', pg: 'text' },
      { name: 'effect', pg: 'text' },
      { name: 'error', pg: 'text' },
      { name: 'attempts', pg: 'int' },
    ],
    items.map(({ id, outcome: o }) => [id, o.status, o.userId, o.stateFrom, o.stateTo, o.effect, o.error, o.attempts]),
  );
  // attempts: null keeps the stored count (settleDelivery leaves it alone when not given).
  await sql`update webhook_inbox set
      status = v.status, processed_at = ${nowIso()}, user_id = v.user_id, state_from = v.state_from, state_to = v.state_to,
      effect = v.effect, error = v.error, attempts = coalesce(v.attempts, webhook_inbox.attempts)
    from ${v}
    where webhook_inbox.id = v.id`.execute(db);
}

export async function settleDelivery(
  db: Executor,
  id: number,
  outcome: {
    status: WebhookStatus;
    userId?: string | null;
    stateFrom?: string | null;
    stateTo?: string | null;
    effect?: string | null;
    error?: string | null;
    attempts?: number;
  },
): Promise<void> {
  await db
    .updateTable('webhookInbox')
    .set({
      status: outcome.status,
      processedAt: nowIso(),
      userId: outcome.userId ?? null,
      stateFrom: (outcome.stateFrom ?? null) as WebhookDelivery['stateFrom'],
      stateTo: (outcome.stateTo ?? null) as WebhookDelivery['stateTo'],
      effect: outcome.effect ?? null,
      error: outcome.error ?? null,
      ...(outcome.attempts !== undefined ? { attempts: outcome.attempts } : {}),
    })
    .where('id', '=', id)
    .execute();
}

/**
 * Records what a Get KYC Details answer made of the customer's deliveries that were waiting for it
 * (processed with effect `conflict_check`): the one that asked (`inboxId`) and any other processed
 * at or before `askedAt` (ISO). `effect` replaces `conflict_check`. Returns how many were settled.
 */
export async function resolveConflictChecks(
  db: Executor,
  userId: string,
  opts: { askedAt: string; inboxId?: number | null; effect: string },
): Promise<number> {
  const r = await db
    .updateTable('webhookInbox')
    .set({ effect: opts.effect })
    .where('userId', '=', userId)
    .where('status', '=', 'processed')
    .where('effect', '=', 'conflict_check')
    .where((eb) =>
      opts.inboxId ? eb.or([eb('processedAt', '<=', opts.askedAt), eb('id', '=', opts.inboxId)]) : eb('processedAt', '<=', opts.askedAt),
    )
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function bumpAttempts(db: Executor, id: number): Promise<void> {
  await db
    .updateTable('webhookInbox')
    .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
    .where('id', '=', id)
    .execute();
}

/** Puts a delivery back to `received` so the normal worker path processes it again. */
export async function resetForReprocess(db: Executor, id: number): Promise<boolean> {
  const r = await db
    .updateTable('webhookInbox')
    .set({ status: 'received', enqueuedAt: null, processedAt: null, error: null })
    .where('id', '=', id)
    .where('status', 'in', ['processed', 'failed', 'ignored'])
    .where('signatureVerdict', '=', 'valid')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function deliveriesForUser(db: Executor, userId: string, externalUserId: string, limit = 200): Promise<WebhookDelivery[]> {
  return db
    .selectFrom('webhookInbox')
    .selectAll()
    .where((eb) => eb.or([eb('userId', '=', userId), eb('externalUserId', '=', externalUserId)]))
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

// ---- operations views (queues, Capa's delivery log, settings)

/** The customer behind each delivery: its own user id, else the user with its external id. */
export async function customersOfDeliveries(
  db: Executor,
  ids: number[],
): Promise<Array<{ id: number; externalUserId: string | null; userId: string | null }>> {
  if (ids.length === 0) return [];
  return db
    .selectFrom('webhookInbox as w')
    .leftJoin('users as u', 'u.externalUserId', 'w.externalUserId')
    .select(['w.id', 'w.externalUserId', (eb) => eb.fn.coalesce('w.userId', 'u.id').as('userId')])
    .where('w.id', 'in', ids)
    .execute();
}

/** What we received for one customer and event, newest first. */
export async function deliveriesForEvent(db: Executor, externalUserId: string, eventName: string, limit = 20) {
  return db
    .selectFrom('webhookInbox')
    .select(['id', 'receivedAt', 'status', 'signatureVerdict', 'duplicateOf', 'stateFrom', 'stateTo', 'effect'])
    .where('externalUserId', '=', externalUserId)
    .where('eventName', '=', eventName)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

/** Per webhook secret (its index in the configured list): deliveries it verified since `since`, and the last one. */
export async function secretUsageSince(
  db: Executor,
  since: string,
): Promise<Array<{ secretIndex: number; lastAt: string | null; count: number }>> {
  const rows = await db
    .selectFrom('webhookInbox')
    .select(['secretIndex', (eb) => eb.fn.max('receivedAt').as('lastAt'), (eb) => eb.fn.countAll<number>().as('n')])
    .where('receivedAt', '>=', since)
    .where('secretIndex', 'is not', null)
    .groupBy('secretIndex')
    .execute();
  return rows.map((u) => ({ secretIndex: Number(u.secretIndex), lastAt: (u.lastAt as string | null) ?? null, count: Number(u.n) }));
}
