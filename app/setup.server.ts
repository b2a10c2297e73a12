import { appendAudit } from '../db/repositories/audit.js';
import { consumeSetupToken, countOperators, setupTokenValid } from '../db/repositories/operators.js';
import { createOperator } from './operator-accounts.server';
import { clientIp } from './auth.server';
import { services } from './services.server';

/** First-admin setup through the one-time link printed at first start. */
export async function setupAvailable(token: string | null): Promise<boolean> {
  if (!token) return false;
  const { db } = await services();
  return (await countOperators(db)) === 0 && (await setupTokenValid(db, token));
}

export async function createFirstAdmin(
  request: Request,
  token: string,
  input: { email: string; name: string; password: string },
): Promise<{ ok: true; operatorId: string } | { ok: false; code: 'setup.link_used' | 'setup.operator_exists' }> {
  const { db } = await services();
  return db.transaction().execute(async (trx) => {
    // Consuming first makes the token single-use even if two submissions race.
    // Refusals are codes of the `auth` catalogue: the page words them.
    if (!(await consumeSetupToken(trx, token))) return { ok: false, code: 'setup.link_used' };
    if ((await countOperators(trx)) > 0) return { ok: false, code: 'setup.operator_exists' };
    const op = await createOperator(trx, { ...input, role: 'admin' });
    await appendAudit(trx, {
      operatorId: op.id,
      actor: op.email,
      action: 'operator.setup_first_admin',
      targetType: 'operator',
      targetId: op.id,
      outcome: 'ok',
      ip: clientIp(request),
    });
    return { ok: true, operatorId: op.id };
  });
}
