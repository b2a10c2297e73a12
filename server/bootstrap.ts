import type { Db } from '../db/client.js';
import type { Env } from './config.js';

/**
 * First-run operator bootstrap. Filled in by the operator console (sign-in and roles):
 * creates the first admin from ADMIN_EMAIL/ADMIN_PASSWORD, or prints a one-time setup link.
 */
export async function bootstrapOperators(_db: Db, _env: Env, _print: (m: string) => void): Promise<void> {}
