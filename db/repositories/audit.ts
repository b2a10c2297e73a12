import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import { kindOf } from '../client.js';
import type { Database } from '../schema.js';
import type { AuditEntry } from '../schema.js';
import { nowIso } from '../time.js';
import type { Executor } from './users.js';
import type { Kysely } from 'kysely';

export const GENESIS = 'GENESIS';

export interface AuditInput {
  operatorId?: string | null;
  actor: string;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  outcome: 'ok' | 'error' | 'denied' | 'queued';
  detail?: Record<string, unknown> | null;
  ip?: string | null;
}

type Hashed = Omit<AuditEntry, 'id' | 'hash'>;

export function auditHash(e: Hashed): string {
  // Field order is fixed here, so the hash never depends on how a row was read back.
  const canonical = JSON.stringify([e.prevHash, e.at, e.operatorId, e.actor, e.action, e.targetType, e.targetId, e.outcome, e.detail, e.ip]);
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * Appends to the hash-chained, append-only audit log. Each row names its predecessor's hash and
 * prev_hash is unique, so two concurrent writers cannot both extend the same row: the loser
 * retries on the new head.
 */
export async function appendAudit(db: Executor, input: AuditInput): Promise<AuditEntry> {
  if (kindOf(db) === 'postgres') {
    // On PostgreSQL a unique violation aborts the surrounding transaction, so retrying is not an
    // option there: serialize appenders with a transaction-scoped advisory lock instead.
    const run = async (trx: Transaction<Database>) => {
      await sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`.execute(trx);
      return appendOnce(trx, input);
    };
    return db.isTransaction ? run(db as Transaction<Database>) : (db as Kysely<Database>).transaction().execute(run);
  }
  // SQLite: writers are serialized by the database lock; the unique prev_hash catches the rest.
  for (let attempt = 0; ; attempt++) {
    try {
      return await appendOnce(db, input);
    } catch (err) {
      if (attempt < 20 && /unique|duplicate/i.test(String((err as Error).message))) continue;
      throw err;
    }
  }
}

const AUDIT_LOCK_KEY = 7_364_001; // arbitrary, constant: "the audit chain head"

async function appendOnce(db: Executor, input: AuditInput): Promise<AuditEntry> {
  {
    const head = await db.selectFrom('auditLog').select('hash').orderBy('id', 'desc').limit(1).executeTakeFirst();
    const row: Hashed = {
      at: nowIso(),
      operatorId: input.operatorId ?? null,
      actor: input.actor,
      action: input.action,
      targetType: input.targetType ?? null,
      targetId: input.targetId ?? null,
      outcome: input.outcome,
      detail: input.detail ? JSON.stringify(input.detail) : null,
      ip: input.ip ?? null,
      prevHash: head?.hash ?? GENESIS,
    };
    const hash = auditHash(row);
    const r = await db.insertInto('auditLog').values({ ...row, hash }).returning('id').executeTakeFirstOrThrow();
    return { ...row, hash, id: r.id };
  }
}

/** Walks the chain; reports the first row whose link or content does not check out. */
export async function verifyAuditChain(db: Executor): Promise<{ ok: true; rows: number } | { ok: false; rows: number; brokenAtId: number; reason: string }> {
  let prev = GENESIS;
  let rows = 0;
  let lastId = 0;
  for (;;) {
    const batch = await db.selectFrom('auditLog').selectAll().where('id', '>', lastId).orderBy('id', 'asc').limit(1000).execute();
    if (batch.length === 0) return { ok: true, rows };
    for (const r of batch) {
      if (r.prevHash !== prev) return { ok: false, rows, brokenAtId: r.id, reason: 'a row is missing before this one (previous hash does not match)' };
      const { id: _id, hash, ...rest } = r;
      if (auditHash(rest) !== hash) return { ok: false, rows, brokenAtId: r.id, reason: 'row content does not match its hash' };
      prev = hash;
      rows++;
      lastId = r.id;
    }
  }
}

export async function auditForTarget(db: Executor, targetType: string, targetId: string, limit = 200): Promise<AuditEntry[]> {
  return db.selectFrom('auditLog').selectAll().where('targetType', '=', targetType).where('targetId', '=', targetId).orderBy('id', 'desc').limit(limit).execute();
}
