import type { Executor } from '../client.js';
import type { OperatorPasskey, OperatorTotp } from '../schema.js';
import { nowIso } from '../../lib/time.js';

/**
 * Operators' second factors: a TOTP secret, one-time recovery codes and WebAuthn passkeys. Secrets
 * arrive encrypted and codes hashed; generating and checking them belongs to the app.
 */

export async function totpFor(db: Executor, operatorId: string): Promise<OperatorTotp | undefined> {
  return db.selectFrom('operatorTotp').selectAll().where('operatorId', '=', operatorId).executeTakeFirst();
}

/** Starts (or restarts) a TOTP enrolment: a new, unconfirmed secret replaces an unconfirmed one. */
export async function putPendingTotp(db: Executor, operatorId: string, secret: string): Promise<void> {
  await db.deleteFrom('operatorTotp').where('operatorId', '=', operatorId).where('confirmedAt', 'is', null).execute();
  await db
    .insertInto('operatorTotp')
    .values({ operatorId, secret, confirmedAt: null, lastTimeStep: null, createdAt: nowIso() })
    .onConflict((oc) => oc.column('operatorId').doNothing())
    .execute();
}

/**
 * Accepts a TOTP time step: only when it is later than the last one accepted (the conditional
 * update is the lock, so one code cannot be used twice even by two racing requests). Confirms an
 * enrolment on its first code.
 */
export async function acceptTotpStep(db: Executor, operatorId: string, timeStep: number): Promise<boolean> {
  const r = await db
    .updateTable('operatorTotp')
    .set((eb) => ({ lastTimeStep: timeStep, confirmedAt: eb.fn.coalesce('confirmedAt', eb.val(nowIso())) }))
    .where('operatorId', '=', operatorId)
    .where((eb) => eb.or([eb('lastTimeStep', 'is', null), eb('lastTimeStep', '<', timeStep)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function deleteTotp(db: Executor, operatorId: string): Promise<void> {
  await db.deleteFrom('operatorTotp').where('operatorId', '=', operatorId).execute();
}

/** Replaces every recovery code of the operator with these (hashed) ones. */
export async function replaceRecoveryCodes(db: Executor, operatorId: string, codeHashes: string[]): Promise<void> {
  await db.deleteFrom('operatorRecoveryCodes').where('operatorId', '=', operatorId).execute();
  const now = nowIso();
  if (codeHashes.length) {
    await db
      .insertInto('operatorRecoveryCodes')
      .values(codeHashes.map((codeHash) => ({ operatorId, codeHash, createdAt: now, usedAt: null })))
      .execute();
  }
}

/** Uses a recovery code: true once per code (a conditional update, so a race uses it once). */
export async function spendRecoveryCode(db: Executor, operatorId: string, codeHash: string): Promise<boolean> {
  const r = await db
    .updateTable('operatorRecoveryCodes')
    .set({ usedAt: nowIso() })
    .where('operatorId', '=', operatorId)
    .where('codeHash', '=', codeHash)
    .where('usedAt', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function unusedRecoveryCodeCount(db: Executor, operatorId: string): Promise<number> {
  const r = await db
    .selectFrom('operatorRecoveryCodes')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('operatorId', '=', operatorId)
    .where('usedAt', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function passkeysFor(db: Executor, operatorId: string): Promise<OperatorPasskey[]> {
  return db.selectFrom('operatorPasskeys').selectAll().where('operatorId', '=', operatorId).orderBy('createdAt', 'asc').execute();
}

export async function findPasskey(db: Executor, id: string): Promise<OperatorPasskey | undefined> {
  return db.selectFrom('operatorPasskeys').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertPasskey(db: Executor, row: Omit<OperatorPasskey, 'createdAt' | 'lastUsedAt'>): Promise<void> {
  await db
    .insertInto('operatorPasskeys')
    .values({ ...row, createdAt: nowIso(), lastUsedAt: null })
    .execute();
}

/**
 * Records a passkey use. The signature counter must move forward when the authenticator keeps
 * one (a counter that does not is a sign of a cloned key); authenticators that keep none report 0.
 */
export async function recordPasskeyUse(db: Executor, id: string, previous: number, counter: number): Promise<boolean> {
  const r = await db
    .updateTable('operatorPasskeys')
    .set({ counter, lastUsedAt: nowIso() })
    .where('id', '=', id)
    .where('counter', '=', previous)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function deletePasskey(db: Executor, operatorId: string, id: string): Promise<boolean> {
  const r = await db.deleteFrom('operatorPasskeys').where('operatorId', '=', operatorId).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** What second factors an operator has (the operators page, /account, the sign-in decision). */
export interface FactorSummary {
  totp: boolean;
  passkeys: number;
  recoveryCodesLeft: number;
}

export async function factorSummaries(db: Executor, operatorIds?: string[]): Promise<Map<string, FactorSummary>> {
  const out = new Map<string, FactorSummary>();
  const get = (id: string) => {
    let s = out.get(id);
    if (!s) out.set(id, (s = { totp: false, passkeys: 0, recoveryCodesLeft: 0 }));
    return s;
  };
  if (operatorIds && operatorIds.length === 0) return out;
  let t = db.selectFrom('operatorTotp').select('operatorId').where('confirmedAt', 'is not', null);
  if (operatorIds) t = t.where('operatorId', 'in', operatorIds);
  for (const r of await t.execute()) get(r.operatorId).totp = true;
  let p = db.selectFrom('operatorPasskeys').select(['operatorId', (eb) => eb.fn.countAll<number>().as('n')]);
  if (operatorIds) p = p.where('operatorId', 'in', operatorIds);
  for (const r of await p.groupBy('operatorId').execute()) get(r.operatorId).passkeys = Number(r.n);
  let c = db
    .selectFrom('operatorRecoveryCodes')
    .select(['operatorId', (eb) => eb.fn.countAll<number>().as('n')])
    .where('usedAt', 'is', null);
  if (operatorIds) c = c.where('operatorId', 'in', operatorIds);
  for (const r of await c.groupBy('operatorId').execute()) get(r.operatorId).recoveryCodesLeft = Number(r.n);
  return out;
}

/** Removes every second factor of an operator (an admin's reset, or the CLI's). */
export async function deleteAllFactors(db: Executor, operatorId: string): Promise<void> {
  await db.deleteFrom('operatorTotp').where('operatorId', '=', operatorId).execute();
  await db.deleteFrom('operatorRecoveryCodes').where('operatorId', '=', operatorId).execute();
  await db.deleteFrom('operatorPasskeys').where('operatorId', '=', operatorId).execute();
}
