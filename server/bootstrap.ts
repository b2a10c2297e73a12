import type { Db } from '../db/client.js';
import { appendAudit } from '../db/repositories/audit.js';
import { countOperators, createSetupToken, findOperatorByEmail } from '../db/repositories/operators.js';
import { createOperator } from '../app/operator-accounts.server.js';
import type { Env } from '../lib/config.js';

/** How long the printed first-admin setup link stays valid. */
export const SETUP_TOKEN_TTL_MS = 24 * 3_600_000;

/**
 * First-run operator bootstrap, run by `npm start` after migrations:
 *  - ADMIN_EMAIL + ADMIN_PASSWORD set and no operator with that e-mail: create that admin (an
 *    existing one is left alone — the variables never silently reset a password);
 *  - otherwise, with no operator at all: print a one-time setup link (valid once, expires).
 */
export async function bootstrapOperators(db: Db, env: Env, print: (m: string) => void): Promise<{ created?: string; setupUrl?: string }> {
  if (env.ADMIN_EMAIL && env.ADMIN_PASSWORD) {
    if (!(await findOperatorByEmail(db, env.ADMIN_EMAIL))) {
      const op = await createOperator(db, { email: env.ADMIN_EMAIL, name: 'Administrator', role: 'admin', password: env.ADMIN_PASSWORD });
      await appendAudit(db, {
        operatorId: op.id,
        actor: 'system',
        action: 'operator.bootstrap_admin',
        targetType: 'operator',
        targetId: op.id,
        outcome: 'ok',
        detail: { source: 'ADMIN_EMAIL' },
      });
      print(`  Created the admin ${op.email} from ADMIN_EMAIL/ADMIN_PASSWORD.`);
      return { created: op.id };
    }
    return {};
  }
  if ((await countOperators(db)) > 0) return {};
  const { token, expiresAt } = await createSetupToken(db, SETUP_TOKEN_TTL_MS);
  const setupUrl = `${env.publicUrl}/setup?token=${token}`;
  print(
    [
      '',
      '  No operator exists yet. Open this one-time link to create the first admin',
      `  (valid once, until ${expiresAt}):`,
      '',
      `    ${setupUrl}`,
      '',
      '  Or set ADMIN_EMAIL and ADMIN_PASSWORD, or run `npm run operators -- add`.',
      '',
    ].join('\n'),
  );
  return { setupUrl };
}
