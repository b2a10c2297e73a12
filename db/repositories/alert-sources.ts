import type { KycState } from '../schema.js';
import type { Executor } from '../client.js';

/**
 * The figures the alert rules (jobs/alerts/rules.ts) and /metrics read from the database. Each
 * takes the evaluator's clock (`now`, `since`) instead of reading the time itself, so a test moves
 * the clock without waiting.
 */

/** When the newest delivery with a valid signature was received; null when none ever was. */
export async function lastValidWebhookAt(db: Executor): Promise<string | null> {
  const r = await db
    .selectFrom('webhookInbox')
    .select('receivedAt')
    .where('signatureVerdict', '=', 'valid')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return r?.receivedAt ?? null;
}

/**
 * Customers Capa should be telling us about: IN_PROGRESS (they started), or LINK_ISSUED with a
 * link issued since `linkSince` (older links are rarely opened any more). How many, and since when
 * the earliest of them has been in that state.
 */
export async function customersAwaitingCapa(db: Executor, linkSince: string): Promise<{ count: number; since: string | null }> {
  const r = await db
    .selectFrom('users')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('kycStateChangedAt').as('since')])
    .where('linkExpired', '=', 0)
    .where((eb) =>
      eb.or([
        eb('kycState', '=', 'IN_PROGRESS' satisfies KycState),
        eb.and([eb('kycState', '=', 'LINK_ISSUED' satisfies KycState), eb('kycStateChangedAt', '>=', linkSince)]),
      ]),
    )
    .executeTakeFirst();
  return { count: Number(r?.n ?? 0), since: (r?.since as string | null) ?? null };
}

/** Deliveries received since `since`, all of them and those whose signature was not valid. */
export async function signatureVerdictsSince(db: Executor, since: string): Promise<{ total: number; bad: number }> {
  const rows = await db
    .selectFrom('webhookInbox')
    .select(['signatureVerdict', (eb) => eb.fn.countAll<number>().as('n')])
    .where('receivedAt', '>=', since)
    .groupBy('signatureVerdict')
    .execute();
  let total = 0;
  let bad = 0;
  for (const r of rows) {
    total += Number(r.n);
    if (r.signatureVerdict !== 'valid') bad += Number(r.n);
  }
  return { total, bad };
}

/** Imports paused by a Capa outage (not those an operator paused), oldest first. */
export async function importsPausedByOutage(db: Executor): Promise<Array<{ id: string; fileName: string; since: string }>> {
  const rows = await db
    .selectFrom('imports')
    .select(['id', 'fileName', 'statusChangedAt'])
    .where('status', '=', 'paused')
    .where('pauseKind', '=', 'outage')
    .orderBy('statusChangedAt', 'asc')
    .execute();
  return rows.map((r) => ({ id: r.id, fileName: r.fileName, since: r.statusChangedAt }));
}

/** Imports paused, by why (for /metrics). */
export async function pausedImportCounts(db: Executor): Promise<Record<'outage' | 'operator', number>> {
  const rows = await db
    .selectFrom('imports')
    .select(['pauseKind', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', '=', 'paused')
    .groupBy('pauseKind')
    .execute();
  const out = { outage: 0, operator: 0 };
  for (const r of rows) out[r.pauseKind === 'outage' ? 'outage' : 'operator'] += Number(r.n);
  return out;
}

/**
 * Customer e-mails settled (sent or failed) since `since`. A message settles at most a few
 * retries after it was created, so only messages created a day before the window are read.
 */
export async function customerEmailOutcomesSince(db: Executor, since: string): Promise<{ sent: number; failed: number }> {
  const createdFrom = new Date(Date.parse(since) - 86_400_000).toISOString();
  const rows = await db
    .selectFrom('notifications')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', 'in', ['sent', 'failed'])
    .where('createdAt', '>=', createdFrom)
    .where('channel', '=', 'email')
    .where('userId', 'is not', null)
    .where((eb) => eb.or([eb('sentAt', '>=', since), eb('failedAt', '>=', since)]))
    .groupBy('status')
    .execute();
  const out = { sent: 0, failed: 0 };
  for (const r of rows) out[r.status as 'sent' | 'failed'] += Number(r.n);
  return out;
}

/** Customer e-mails ever settled, by outcome (monotonic: for /metrics). */
export async function customerEmailTotals(db: Executor): Promise<{ sent: number; failed: number }> {
  const rows = await db
    .selectFrom('notifications')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', 'in', ['sent', 'failed'])
    .where('channel', '=', 'email')
    .where('userId', 'is not', null)
    .groupBy('status')
    .execute();
  const out = { sent: 0, failed: 0 };
  for (const r of rows) out[r.status as 'sent' | 'failed'] += Number(r.n);
  return out;
}

/** Drift corrections detected in [from, to). */
export async function driftCorrectionsBetween(db: Executor, from: string, to: string): Promise<number> {
  const r = await db
    .selectFrom('driftEvents')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('detectedAt', '>=', from)
    .where('detectedAt', '<', to)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Drift corrections ever recorded (monotonic: for /metrics). */
export async function driftCorrectionsTotal(db: Executor): Promise<number> {
  const r = await db
    .selectFrom('driftEvents')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}
