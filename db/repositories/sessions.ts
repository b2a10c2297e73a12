import { randomBytes } from 'node:crypto';
import type { Operator, Session } from '../schema.js';
import { isoAgo, isoIn, nowIso } from '../../lib/time.js';
import { sha256 } from './operators.js';
import type { Executor } from '../client.js';

/**
 * Console sessions. The cookie carries a random 256-bit id; the table stores only its sha256, so
 * a copy of the table cannot be replayed as live cookies. Each session has its own CSRF token.
 */
export interface SessionPolicy {
  idleMs: number;
  maxMs: number;
}

export async function createSession(
  db: Executor,
  input: { operatorId: string; userAgent: string | null; ip: string | null },
  policy: SessionPolicy,
): Promise<{ id: string; csrfToken: string; expiresAt: string }> {
  const id = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(24).toString('base64url');
  const now = nowIso();
  const expiresAt = isoIn(policy.maxMs);
  await db
    .insertInto('sessions')
    .values({
      idHash: sha256(id),
      operatorId: input.operatorId,
      csrfToken,
      createdAt: now,
      lastSeenAt: now,
      expiresAt,
      revokedAt: null,
      userAgent: input.userAgent?.slice(0, 300) ?? null,
      ip: input.ip,
    })
    .execute();
  return { id, csrfToken, expiresAt };
}

export type LiveSession = { session: Session; operator: Pick<Operator, 'id' | 'email' | 'name' | 'role'> };

/** Touching last-seen at most this often keeps polling pages from writing on every request. */
const TOUCH_EVERY_MS = 30_000;

/**
 * The live session for a cookie id: not revoked, within its absolute lifetime, used within the
 * idle window, and its operator not disabled. Refreshes last-seen.
 */
export async function findLiveSession(db: Executor, id: string, policy: SessionPolicy): Promise<LiveSession | null> {
  const row = await db
    .selectFrom('sessions')
    .innerJoin('operators', 'operators.id', 'sessions.operatorId')
    .selectAll('sessions')
    .select(['operators.email', 'operators.name', 'operators.role', 'operators.disabled'])
    .where('sessions.idHash', '=', sha256(id))
    .executeTakeFirst();
  if (!row) return null;
  const now = Date.now();
  if (row.revokedAt || row.disabled || Date.parse(row.expiresAt) <= now || Date.parse(row.lastSeenAt) + policy.idleMs <= now) return null;
  if (Date.parse(row.lastSeenAt) + TOUCH_EVERY_MS <= now) {
    await db.updateTable('sessions').set({ lastSeenAt: nowIso() }).where('idHash', '=', row.idHash).execute();
  }
  const { email, name, role, disabled: _d, ...session } = row;
  return { session, operator: { id: row.operatorId, email, name, role } };
}

export async function revokeSession(db: Executor, id: string): Promise<void> {
  await db.updateTable('sessions').set({ revokedAt: nowIso() }).where('idHash', '=', sha256(id)).where('revokedAt', 'is', null).execute();
}

/** Signs an operator out everywhere (disable, password reset). */
export async function revokeOperatorSessions(db: Executor, operatorId: string): Promise<number> {
  const r = await db
    .updateTable('sessions')
    .set({ revokedAt: nowIso() })
    .where('operatorId', '=', operatorId)
    .where('revokedAt', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Housekeeping: drops sessions that ended long ago. */
export async function purgeOldSessions(db: Executor, olderThanMs: number): Promise<void> {
  await db.deleteFrom('sessions').where('expiresAt', '<', isoAgo(olderThanMs)).execute();
}
