import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import { kindOf } from '../client.js';
import type { Database } from '../schema.js';
import type { AuditAnchor, AuditEntry } from '../schema.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';
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
  const canonical = JSON.stringify([
    e.prevHash,
    e.at,
    e.operatorId,
    e.actor,
    e.action,
    e.targetType,
    e.targetId,
    e.outcome,
    e.detail,
    e.ip,
  ]);
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
    const r = await db
      .insertInto('auditLog')
      .values({ ...row, hash })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { ...row, hash, id: r.id };
  }
}

type Walked =
  { ok: true; rows: number; head: string; headId: number | null } | { ok: false; rows: number; brokenAtId: number; reason: string };

/** Walks the chain from its start, at most `upTo` rows; reports the first row that does not check out. */
async function walkChain(db: Executor, upTo: number | null): Promise<Walked> {
  let prev = GENESIS;
  let rows = 0;
  let lastId = 0;
  for (;;) {
    const limit = upTo === null ? 1000 : Math.min(1000, upTo - rows);
    if (limit <= 0) return { ok: true, rows, head: prev, headId: lastId || null };
    const batch = await db.selectFrom('auditLog').selectAll().where('id', '>', lastId).orderBy('id', 'asc').limit(limit).execute();
    if (batch.length === 0) return { ok: true, rows, head: prev, headId: lastId || null };
    for (const r of batch) {
      if (r.prevHash !== prev)
        return { ok: false, rows, brokenAtId: r.id, reason: 'a row is missing before this one (previous hash does not match)' };
      const { id: _id, hash, ...rest } = r;
      if (auditHash(rest) !== hash) return { ok: false, rows, brokenAtId: r.id, reason: 'row content does not match its hash' };
      prev = hash;
      rows++;
      lastId = r.id;
    }
  }
}

/** Walks the chain; reports the first row whose link or content does not check out. */
export async function verifyAuditChain(
  db: Executor,
): Promise<{ ok: true; rows: number } | { ok: false; rows: number; brokenAtId: number; reason: string }> {
  const w = await walkChain(db, null);
  return w.ok ? { ok: true, rows: w.rows } : w;
}

// ---------------------------------------------------------------- anchors

/**
 * Whoever can write the database can also rewrite a row and recompute every later hash; the chain
 * then verifies again. An anchor — the head hash and the row count at a moment, kept outside the
 * database (the log stream) — is what such a rewrite cannot change: today's chain must still have
 * that hash at that position.
 */
export interface ChainHead {
  /** Rows in the chain up to and including the head. */
  count: number;
  headId: number | null;
  /** The head row's hash; GENESIS while the log is empty. */
  head: string;
}

export async function auditChainHead(db: Executor): Promise<ChainHead> {
  const last = await db.selectFrom('auditLog').select(['id', 'hash']).orderBy('id', 'desc').limit(1).executeTakeFirst();
  if (!last) return { count: 0, headId: null, head: GENESIS };
  // Counted up to the head's id, so rows appended meanwhile do not skew the pair.
  const c = await db
    .selectFrom('auditLog')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('id', '<=', last.id)
    .executeTakeFirstOrThrow();
  return { count: Number(c.n), headId: last.id, head: last.hash };
}

/** Records the chain's current head as an anchor row (the caller also writes it to the log). */
export async function recordAuditAnchor(db: Executor, at = nowIso()): Promise<AuditAnchor> {
  const h = await auditChainHead(db);
  const row = { at, rowCount: h.count, headId: h.headId, headHash: h.head };
  const r = await db.insertInto('auditAnchors').values(row).returning('id').executeTakeFirstOrThrow();
  return { id: r.id, ...row };
}

/** Newest first. */
export async function listAuditAnchors(db: Executor, limit = 10): Promise<AuditAnchor[]> {
  return db.selectFrom('auditAnchors').selectAll().orderBy('id', 'desc').limit(limit).execute();
}

export type AnchorCheck =
  /** Today's chain verifies up to row #count, and that row's hash is the saved head. */
  | { code: 'match'; count: number; head: string }
  /** The chain now has fewer rows than the anchor counted. */
  | { code: 'short'; count: number; rows: number }
  /** Row #count exists and the chain up to it verifies, but its hash is another: rewritten. */
  | { code: 'different'; count: number; head: string; found: string }
  /** The chain does not verify before row #count. */
  | { code: 'broken'; count: number; rows: number; brokenAtId: number; reason: string };

/** Is a saved anchor (head hash, row count) still an ancestor of today's chain? */
export async function checkAuditAnchor(db: Executor, anchor: { head: string; count: number }): Promise<AnchorCheck> {
  const { head, count } = anchor;
  const w = await walkChain(db, count);
  if (!w.ok) return { code: 'broken', count, rows: w.rows, brokenAtId: w.brokenAtId, reason: w.reason };
  if (w.rows < count) return { code: 'short', count, rows: w.rows };
  if (w.head !== head) return { code: 'different', count, head, found: w.head };
  return { code: 'match', count, head };
}

export async function auditForTarget(db: Executor, targetType: string, targetId: string, limit = 200): Promise<AuditEntry[]> {
  return db
    .selectFrom('auditLog')
    .selectAll()
    .where('targetType', '=', targetType)
    .where('targetId', '=', targetId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

/** Entries of one action since `since`, oldest first. */
export async function auditByActionSince(
  db: Executor,
  action: string,
  since: string,
): Promise<Array<Pick<AuditEntry, 'at' | 'outcome' | 'detail'>>> {
  return db
    .selectFrom('auditLog')
    .select(['at', 'outcome', 'detail'])
    .where('action', '=', action)
    .where('at', '>=', since)
    .orderBy('id', 'asc')
    .execute();
}

/** The outcomes recorded against one target since `since`, newest first. */
export async function auditOutcomesForTarget(
  db: Executor,
  q: { targetType: string; targetId: string; since: string; limit: number },
): Promise<Array<Pick<AuditEntry, 'at' | 'outcome'>>> {
  return db
    .selectFrom('auditLog')
    .select(['at', 'outcome'])
    .where('targetType', '=', q.targetType)
    .where('targetId', '=', q.targetId)
    .where('at', '>=', q.since)
    .orderBy('id', 'desc')
    .limit(q.limit)
    .execute();
}

/**
 * Refusals recorded from one client address since `since` against the given target types (the
 * per-address sign-in throttle), newest first.
 */
export async function auditRefusalsFromIp(
  db: Executor,
  q: { ip: string; targetTypes: string[]; since: string; limit: number },
): Promise<Array<Pick<AuditEntry, 'at'>>> {
  return db
    .selectFrom('auditLog')
    .select(['at'])
    .where('ip', '=', q.ip)
    .where('at', '>=', q.since)
    .where('targetType', 'in', q.targetTypes)
    .where('outcome', '=', 'denied')
    .orderBy('at', 'desc')
    .limit(q.limit)
    .execute();
}
