import type { Executor } from '../db/client.js';
import { insertOperator, setOperatorPasswordHash } from '../db/repositories/operators.js';
import type { Operator, Role } from '../db/schema.js';
import { normalizeEmail } from '../domain/email.js';
import { hashPassword } from '../lib/password.js';

/**
 * Operator accounts and their passwords, for the operators page, first-admin setup and the
 * process hosts (the ADMIN_EMAIL bootstrap of `npm start`, `npm run operators`). Apart from
 * operators.server.ts so the launcher and the CLI load no web code (sessions, Remix, queues).
 */

export const MIN_PASSWORD_LENGTH = 10;

/** Stored for an operator without a password: no scrypt hash matches it, so password sign-in always fails. */
export const NO_PASSWORD = '';

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new Error(`the password needs at least ${MIN_PASSWORD_LENGTH} characters`);
}

/** Adds an operator; without a name, the console shows their e-mail. */
export async function createOperator(
  db: Executor,
  input: { email: string; name: string; role: Role; password: string },
): Promise<Operator> {
  checkPassword(input.password);
  return insertOperator(db, {
    email: input.email,
    name: input.name.trim() || normalizeEmail(input.email),
    role: input.role,
    passwordHash: await hashPassword(input.password),
  });
}

export async function setOperatorPassword(db: Executor, id: string, password: string): Promise<boolean> {
  checkPassword(password);
  return setOperatorPasswordHash(db, id, await hashPassword(password));
}

/**
 * Adds an operator met for the first time through single sign-on (OIDC_JIT). They have no
 * password: they sign in through the provider only, until an admin gives them one.
 */
export async function createSsoOperator(
  db: Executor,
  input: { email: string; name: string; role: Role; issuer: string; subject: string },
): Promise<Operator> {
  return insertOperator(db, {
    email: input.email,
    name: input.name.trim() || normalizeEmail(input.email),
    role: input.role,
    passwordHash: NO_PASSWORD,
    oidc: { issuer: input.issuer, subject: input.subject },
  });
}
