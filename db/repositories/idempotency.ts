import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

export type Claim = { fresh: true } | { fresh: false; status: 'started' | 'done' | 'failed'; result: unknown };

/**
 * Records a side effect (Capa create, link, e-mail) *before* it is attempted. A second claim
 * of the same key sees the first one: `done` means never repeat; `started` means a previous
 * attempt may or may not have reached the other side (the caller decides how to resolve it).
 */
export async function claim(db: Executor, key: string, kind: string): Promise<Claim> {
  const now = nowIso();
  const ins = await db
    .insertInto('idempotency')
    .values({ key, kind, status: 'started', result: null, createdAt: now, updatedAt: now })
    .onConflict((oc) => oc.column('key').doNothing())
    .executeTakeFirst();
  if (Number(ins.numInsertedOrUpdatedRows ?? 0) > 0) return { fresh: true };
  const row = await db.selectFrom('idempotency').select(['status', 'result']).where('key', '=', key).executeTakeFirstOrThrow();
  return { fresh: false, status: row.status, result: row.result ? JSON.parse(row.result) : null };
}

export async function settle(db: Executor, key: string, status: 'done' | 'failed', result: unknown): Promise<void> {
  await db
    .updateTable('idempotency')
    .set({ status, result: JSON.stringify(result ?? null), updatedAt: nowIso() })
    .where('key', '=', key)
    .execute();
}

/** Reads a claim without taking it (its result parsed); null when nobody claimed the key. */
export async function peekClaim(
  db: Executor,
  key: string,
): Promise<{ status: 'started' | 'done' | 'failed'; result: unknown; updatedAt: string } | null> {
  const r = await db.selectFrom('idempotency').select(['status', 'result', 'updatedAt']).where('key', '=', key).executeTakeFirst();
  if (!r) return null;
  return { status: r.status, result: r.result ? JSON.parse(r.result) : null, updatedAt: r.updatedAt };
}

/** The claim's last touch (to tell a live attempt from an interrupted one). */
export async function claimTouchedAt(db: Executor, key: string): Promise<string | null> {
  const r = await db.selectFrom('idempotency').select('updatedAt').where('key', '=', key).executeTakeFirst();
  return r?.updatedAt ?? null;
}

/** Re-opens a failed effect for another attempt (failed = known not to have happened). */
export async function reopen(db: Executor, key: string): Promise<boolean> {
  const r = await db
    .updateTable('idempotency')
    .set({ status: 'started', updatedAt: nowIso() })
    .where('key', '=', key)
    .where('status', '=', 'failed')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function forget(db: Executor, key: string): Promise<void> {
  await db.deleteFrom('idempotency').where('key', '=', key).execute();
}
