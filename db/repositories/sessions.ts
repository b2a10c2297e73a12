import { randomBytes } from 'node:crypto';
import type { Operator, Session, SessionStage } from '../schema.js';
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

/**
 * A session that is not yet signed in (second factor pending or to be set up) lives at most this
 * long: the password was accepted, and that alone must not hold a door open for hours.
 */
export const PENDING_SESSION_MS = 10 * 60_000;

export async function createSession(
  db: Executor,
  input: {
    operatorId: string;
    userAgent: string | null;
    ip: string | null;
    stage?: SessionStage;
    method?: string | null;
    oidcTokens?: string | null;
  },
  policy: SessionPolicy,
): Promise<{ id: string; csrfToken: string; expiresAt: string }> {
  const id = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(24).toString('base64url');
  const now = nowIso();
  const stage = input.stage ?? 'full';
  const expiresAt = isoIn(stage === 'full' ? policy.maxMs : Math.min(policy.maxMs, PENDING_SESSION_MS));
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
      stage,
      method: input.method ?? null,
      oidcTokens: input.oidcTokens ?? null,
      oidcCheckedAt: input.oidcTokens ? now : null,
    })
    .execute();
  return { id, csrfToken, expiresAt };
}

export type LiveSession = { session: Session; operator: Pick<Operator, 'id' | 'email' | 'name' | 'role'> };

/** Touching last-seen at most this often keeps busy pages from writing on every request. */
const TOUCH_EVERY_MS = 30_000;

/**
 * The live session for a cookie id: not revoked, within its absolute lifetime, used within the
 * idle window, and its operator not disabled. Refreshes last-seen unless `touch` is false (a
 * page polling on its own is not the operator being active).
 */
export async function findLiveSession(
  db: Executor,
  id: string,
  policy: SessionPolicy,
  opts: { touch?: boolean } = {},
): Promise<LiveSession | null> {
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
  if (opts.touch !== false && Date.parse(row.lastSeenAt) + TOUCH_EVERY_MS <= now) {
    await db.updateTable('sessions').set({ lastSeenAt: nowIso() }).where('idHash', '=', row.idHash).execute();
  }
  const { email, name, role, disabled: _d, ...session } = row;
  return { session, operator: { id: row.operatorId, email, name, role } };
}

export async function revokeSession(db: Executor, id: string): Promise<void> {
  await revokeSessionByHash(db, sha256(id));
}

export async function revokeSessionByHash(db: Executor, idHash: string): Promise<void> {
  await db.updateTable('sessions').set({ revokedAt: nowIso() }).where('idHash', '=', idHash).where('revokedAt', 'is', null).execute();
}

/** Signs an operator out everywhere (disable, password reset, factors reset, the provider said no). */
export async function revokeOperatorSessions(db: Executor, operatorId: string): Promise<number> {
  const r = await db
    .updateTable('sessions')
    .set({ revokedAt: nowIso() })
    .where('operatorId', '=', operatorId)
    .where('revokedAt', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export type SessionListing = Pick<Session, 'idHash' | 'createdAt' | 'lastSeenAt' | 'expiresAt' | 'userAgent' | 'ip' | 'method'>;

/** An operator's signed-in sessions (not revoked, not expired, used within the idle window), most recent first. */
export async function listLiveSessions(db: Executor, operatorId: string, policy: SessionPolicy): Promise<SessionListing[]> {
  const now = nowIso();
  return db
    .selectFrom('sessions')
    .select(['idHash', 'createdAt', 'lastSeenAt', 'expiresAt', 'userAgent', 'ip', 'method'])
    .where('operatorId', '=', operatorId)
    .where('revokedAt', 'is', null)
    .where('stage', '=', 'full')
    .where('expiresAt', '>', now)
    .where('lastSeenAt', '>', isoAgo(policy.idleMs))
    .orderBy('lastSeenAt', 'desc')
    .limit(100)
    .execute();
}

/** How many signed-in sessions each operator has (the operators page). */
export async function liveSessionCounts(db: Executor, policy: SessionPolicy): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('sessions')
    .select(['operatorId', (eb) => eb.fn.countAll<number>().as('n')])
    .where('revokedAt', 'is', null)
    .where('stage', '=', 'full')
    .where('expiresAt', '>', nowIso())
    .where('lastSeenAt', '>', isoAgo(policy.idleMs))
    .groupBy('operatorId')
    .execute();
  return new Map(rows.map((r) => [r.operatorId, Number(r.n)]));
}

/** Stores the WebAuthn challenge just handed to this session (replacing any earlier one). */
export async function setSessionChallenge(db: Executor, idHash: string, challenge: string): Promise<void> {
  await db.updateTable('sessions').set({ challenge }).where('idHash', '=', idHash).execute();
}

/**
 * Takes the session's WebAuthn challenge and clears it in one conditional update, so one
 * challenge answers at most one ceremony even when two answers race.
 */
export async function takeSessionChallenge(db: Executor, idHash: string): Promise<string | null> {
  const row = await db.selectFrom('sessions').select('challenge').where('idHash', '=', idHash).executeTakeFirst();
  if (!row?.challenge) return null;
  const r = await db
    .updateTable('sessions')
    .set({ challenge: null })
    .where('idHash', '=', idHash)
    .where('challenge', '=', row.challenge)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0 ? row.challenge : null;
}

/**
 * Claims the next re-check at the provider for this session: only the request that moves
 * `oidcCheckedAt` from the value it read performs it, so parallel requests never present the
 * same refresh token twice (a provider that rotates them would take the second as a replay).
 */
export async function claimOidcCheck(db: Executor, idHash: string, seenCheckedAt: string | null): Promise<boolean> {
  const r = await db
    .updateTable('sessions')
    .set({ oidcCheckedAt: nowIso() })
    .where('idHash', '=', idHash)
    .where((eb) => (seenCheckedAt === null ? eb('oidcCheckedAt', 'is', null) : eb('oidcCheckedAt', '=', seenCheckedAt)))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Keeps the provider tokens a re-check returned (refresh tokens may rotate). */
export async function storeOidcTokens(db: Executor, idHash: string, oidcTokens: string): Promise<void> {
  await db.updateTable('sessions').set({ oidcTokens }).where('idHash', '=', idHash).execute();
}

/** Housekeeping: drops sessions that ended long ago. */
export async function purgeOldSessions(db: Executor, olderThanMs: number): Promise<void> {
  await db.deleteFrom('sessions').where('expiresAt', '<', isoAgo(olderThanMs)).execute();
}
