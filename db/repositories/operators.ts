import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Executor } from '../client.js';
import type { Operator, Role } from '../schema.js';
import { isoIn, nowIso } from '../../lib/time.js';
import { isLanguage, isTimeZone, type Language, type TimeZone } from '../../lib/locales.js';
import { normalizeEmail } from './users.js';

/**
 * Operators (console staff) and the one-time setup tokens that create the first admin. Passwords
 * arrive hashed: hashing and the password rules belong to the operators feature.
 */

export type PublicOperator = Pick<Operator, 'id' | 'email' | 'name' | 'role' | 'disabled' | 'lastLoginAt' | 'createdAt'>;

export async function insertOperator(
  db: Executor,
  input: { email: string; name: string; role: Role; passwordHash: string; oidc?: { issuer: string; subject: string } },
): Promise<Operator> {
  const now = nowIso();
  const row: Operator = {
    id: randomUUID(),
    email: normalizeEmail(input.email),
    name: input.name,
    role: input.role,
    passwordHash: input.passwordHash,
    disabled: 0,
    failedLogins: 0,
    lastFailedLoginAt: null,
    lastLoginAt: null,
    createdAt: now,
    updatedAt: now,
    oidcIssuer: input.oidc?.issuer ?? null,
    oidcSubject: input.oidc?.subject ?? null,
    locale: null,
    timeZone: null,
  };
  await db.insertInto('operators').values(row).execute();
  return row;
}

export async function findOperatorByEmail(db: Executor, email: string): Promise<Operator | undefined> {
  return db.selectFrom('operators').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
}

export async function findOperatorById(db: Executor, id: string): Promise<Operator | undefined> {
  return db.selectFrom('operators').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The operator a provider's subject belongs to (set at their first single sign-on). */
export async function findOperatorBySubject(db: Executor, issuer: string, subject: string): Promise<Operator | undefined> {
  return db.selectFrom('operators').selectAll().where('oidcIssuer', '=', issuer).where('oidcSubject', '=', subject).executeTakeFirst();
}

/** Records the provider subject an operator (found by e-mail) signed in as, so later sign-ins match by subject. */
export async function linkOperatorSubject(db: Executor, id: string, issuer: string, subject: string): Promise<void> {
  await db.updateTable('operators').set({ oidcIssuer: issuer, oidcSubject: subject, updatedAt: nowIso() }).where('id', '=', id).execute();
}

/** Operators who have signed in through single sign-on at least once (their provider subject is known). */
export async function operatorsLinkedToProvider(db: Executor): Promise<Set<string>> {
  const rows = await db.selectFrom('operators').select('id').where('oidcSubject', 'is not', null).execute();
  return new Set(rows.map((r) => r.id));
}

export async function listOperators(db: Executor): Promise<PublicOperator[]> {
  return db
    .selectFrom('operators')
    .select(['id', 'email', 'name', 'role', 'disabled', 'lastLoginAt', 'createdAt'])
    .orderBy('email', 'asc')
    .execute();
}

export async function countOperators(db: Executor, opts: { activeAdminsOnly?: boolean } = {}): Promise<number> {
  let q = db.selectFrom('operators').select((eb) => eb.fn.countAll<number>().as('n'));
  if (opts.activeAdminsOnly) q = q.where('role', '=', 'admin').where('disabled', '=', 0);
  const r = await q.executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function setOperatorDisabled(db: Executor, id: string, disabled: boolean): Promise<boolean> {
  const r = await db
    .updateTable('operators')
    .set({ disabled: disabled ? 1 : 0, updatedAt: nowIso() })
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function setOperatorRole(db: Executor, id: string, role: Role): Promise<boolean> {
  const r = await db.updateTable('operators').set({ role, updatedAt: nowIso() }).where('id', '=', id).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Stores a new password hash and clears the failed sign-in count. */
export async function setOperatorPasswordHash(db: Executor, id: string, passwordHash: string): Promise<boolean> {
  const r = await db
    .updateTable('operators')
    .set({ passwordHash, failedLogins: 0, lastFailedLoginAt: null, updatedAt: nowIso() })
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function recordLoginFailure(db: Executor, id: string): Promise<void> {
  await db
    .updateTable('operators')
    .set((eb) => ({ failedLogins: eb('failedLogins', '+', 1), lastFailedLoginAt: nowIso() }))
    .where('id', '=', id)
    .execute();
}

export async function recordLoginSuccess(db: Executor, id: string): Promise<void> {
  await db.updateTable('operators').set({ failedLogins: 0, lastFailedLoginAt: null, lastLoginAt: nowIso() }).where('id', '=', id).execute();
}

// ---- the operator's own language and time zone ----

export interface OperatorPreferences {
  /** null: the browser's language, else the instance's DEFAULT_LOCALE. */
  locale: Language | null;
  /** null: the instance's DEFAULT_TIME_ZONE. */
  timeZone: TimeZone | null;
}

/** An operator's stored language and time zone (null when there is no such operator). */
export async function operatorPreferences(db: Executor, id: string): Promise<OperatorPreferences | null> {
  const row = await db.selectFrom('operators').select(['locale', 'timeZone']).where('id', '=', id).executeTakeFirst();
  return row ? { locale: isLanguage(row.locale) ? row.locale : null, timeZone: isTimeZone(row.timeZone) ? row.timeZone : null } : null;
}

/**
 * Sets an operator's language and time zone (null returns either to the default). A value
 * outside the supported lists is refused here before the database's own check would.
 */
export async function setOperatorPreferences(db: Executor, id: string, prefs: OperatorPreferences): Promise<boolean> {
  if (prefs.locale !== null && !isLanguage(prefs.locale)) throw new RangeError(`unsupported language: ${String(prefs.locale)}`);
  if (prefs.timeZone !== null && !isTimeZone(prefs.timeZone)) throw new RangeError(`unsupported time zone: ${String(prefs.timeZone)}`);
  const r = await db
    .updateTable('operators')
    .set({ locale: prefs.locale, timeZone: prefs.timeZone, updatedAt: nowIso() })
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

// ---- one-time setup tokens (first admin when ADMIN_EMAIL/ADMIN_PASSWORD are not set) ----

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Issues a setup token (returned once, stored hashed). */
export async function createSetupToken(db: Executor, ttlMs: number): Promise<{ token: string; expiresAt: string }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = isoIn(ttlMs);
  await db
    .insertInto('setupTokens')
    .values({ tokenHash: sha256(token), createdAt: nowIso(), expiresAt, usedAt: null })
    .execute();
  return { token, expiresAt };
}

/** Whether the token exists, is unused and unexpired (does not consume it). */
export async function setupTokenValid(db: Executor, token: string): Promise<boolean> {
  const row = await db.selectFrom('setupTokens').selectAll().where('tokenHash', '=', sha256(token)).executeTakeFirst();
  return Boolean(row && !row.usedAt && row.expiresAt > nowIso());
}

/**
 * Consumes the token: the conditional update is the lock, so two concurrent submissions cannot
 * both create an admin with one token.
 */
export async function consumeSetupToken(db: Executor, token: string): Promise<boolean> {
  const now = nowIso();
  const r = await db
    .updateTable('setupTokens')
    .set({ usedAt: now })
    .where('tokenHash', '=', sha256(token))
    .where('usedAt', 'is', null)
    .where('expiresAt', '>', now)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}
