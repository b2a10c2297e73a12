import { createHash, randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Operator, Role } from '../schema.js';
import { isoIn, nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';
import { normalizeEmail } from './users.js';

/**
 * Operators (console staff), their passwords and the one-time setup tokens that create the
 * first admin. Passwords are hashed with scrypt (memory-hard): N=2^15, r=8 → 32 MiB per hash.
 */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keyLen: 32 } as const;

function scrypt(password: string, salt: Buffer, keyLen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keyLen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export const MIN_PASSWORD_LENGTH = 10;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password.normalize('NFKC'), salt, SCRYPT.keyLen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A hash of a random password, compared against when the e-mail is unknown (same timing). */
let decoy: Promise<string> | undefined;

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const target = stored ?? (await (decoy ??= hashPassword(randomBytes(16).toString('hex'))));
  const parts = target.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltB64, keyB64] = parts;
  const expected = Buffer.from(keyB64, 'base64');
  const key = await scrypt(password.normalize('NFKC'), Buffer.from(saltB64, 'base64'), expected.length, {
    N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024,
  });
  return stored !== null && key.length === expected.length && timingSafeEqual(key, expected);
}

export type PublicOperator = Pick<Operator, 'id' | 'email' | 'name' | 'role' | 'disabled' | 'lastLoginAt' | 'createdAt'>;

export async function createOperator(db: Executor, input: { email: string; name: string; role: Role; password: string }): Promise<Operator> {
  if (input.password.length < MIN_PASSWORD_LENGTH) throw new Error(`the password needs at least ${MIN_PASSWORD_LENGTH} characters`);
  const now = nowIso();
  const row: Operator = {
    id: randomUUID(),
    email: normalizeEmail(input.email),
    name: input.name.trim() || normalizeEmail(input.email),
    role: input.role,
    passwordHash: await hashPassword(input.password),
    disabled: 0,
    failedLogins: 0,
    lastFailedLoginAt: null,
    lastLoginAt: null,
    createdAt: now,
    updatedAt: now,
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
  const r = await db.updateTable('operators').set({ disabled: disabled ? 1 : 0, updatedAt: nowIso() }).where('id', '=', id).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function setOperatorRole(db: Executor, id: string, role: Role): Promise<boolean> {
  const r = await db.updateTable('operators').set({ role, updatedAt: nowIso() }).where('id', '=', id).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function setOperatorPassword(db: Executor, id: string, password: string): Promise<boolean> {
  if (password.length < MIN_PASSWORD_LENGTH) throw new Error(`the password needs at least ${MIN_PASSWORD_LENGTH} characters`);
  const passwordHash = await hashPassword(password);
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

// ---- one-time setup tokens (first admin when ADMIN_EMAIL/ADMIN_PASSWORD are not set) ----

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Issues a setup token (returned once, stored hashed). */
export async function createSetupToken(db: Executor, ttlMs: number): Promise<{ token: string; expiresAt: string }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = isoIn(ttlMs);
  await db.insertInto('setupTokens').values({ tokenHash: sha256(token), createdAt: nowIso(), expiresAt, usedAt: null }).execute();
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
