import { UnrecoverableError } from 'bullmq';
import type { Transaction } from 'kysely';
import { CapaError, describeCapaError } from '../capa/client.js';
import type { Executor } from '../db/client.js';
import { claim, settle } from '../db/repositories/idempotency.js';
import { findUserById, markCapaCreated, markCapaSyncFailed } from '../db/repositories/users.js';
import type { Database, User } from '../db/schema.js';
import type { JobContext } from './types.js';

/**
 * Creating a customer in Capa, whoever asks (the console's create-capa-user, an import row): the
 * side effect is claimed under `capa-create:<externalUserId>` before Capa is called, so a retried
 * or duplicated job never creates twice, and the outcome is committed together with the
 * customer's Capa id.
 */

const createKey = (externalUserId: string) => `capa-create:${externalUserId}`;

/** The claim of the create: the Capa id when an earlier attempt already created the customer. */
export type CreateClaim = { capaUserId: string } | { capaUserId: null; inDoubt: boolean };

/**
 * Claims the create (an import row takes it in the transaction that inserts the customer: one
 * commit fewer per row).
 */
export async function claimCapaCreate(db: Executor, externalUserId: string): Promise<CreateClaim> {
  const c = await claim(db, createKey(externalUserId), 'capa-create');
  if (!c.fresh && c.status === 'done') return { capaUserId: (c.result as { userId: string }).userId };
  // `started` from an earlier attempt: it may have reached Capa (the process stopped mid-call).
  return { capaUserId: null, inDoubt: !c.fresh && c.status === 'started' };
}

/**
 * Stored (the customer's Capa error, the job's failure) in English like describeCapaError's
 * words; the console reads it back as `users:failures.capa_in_doubt` to word it for the reader.
 */
export const CAPA_CREATE_IN_DOUBT =
  'Capa already has this externalUserId and an earlier attempt did not record its Capa id (the process may have stopped mid-call). Ask Capa for the userId.';

/**
 * Creates `user` in Capa at most once and records the outcome. `claimed`: the claim the caller
 * already took (else it is taken here). `withOutcome`: more writes committed together with the
 * customer's Capa id (`called`: Capa was called by this run, not answered from an earlier one).
 *
 * A refusal by Capa is recorded (claim failed, the customer's Capa sync failed with the reason)
 * and thrown as UnrecoverableError; any other error (network, 5xx, 429) is thrown as it is and
 * leaves the claim `started` for the next attempt.
 */
export async function createInCapa<T = undefined>(
  ctx: Pick<JobContext, 'db' | 'capa'>,
  user: Pick<User, 'id' | 'type' | 'email' | 'externalUserId' | 'alias'>,
  opts: {
    claimed?: CreateClaim;
    withOutcome?: (trx: Transaction<Database>, r: { capaUserId: string; called: boolean }) => Promise<T>;
  } = {},
): Promise<{ capaUserId: string; called: boolean; outcome: T | undefined }> {
  const key = createKey(user.externalUserId);
  const claimed = opts.claimed ?? (await claimCapaCreate(ctx.db, user.externalUserId));
  let capaUserId = claimed.capaUserId;
  const called = capaUserId === null;
  if (capaUserId === null) {
    try {
      capaUserId = (
        await ctx.capa.createUser({
          type: user.type,
          email: user.email,
          externalUserId: user.externalUserId,
          ...(user.alias ? { alias: user.alias } : {}),
        })
      ).userId;
    } catch (err) {
      if (err instanceof CapaError && !err.retryable) {
        // A 409 after an attempt that may have reached Capa (a claim left `started`, or the
        // client's own retry of a call that timed out) is most likely our own earlier create.
        const reused = err.status === 409 && (('inDoubt' in claimed && claimed.inDoubt) || err.attempts > 1);
        const message = reused ? CAPA_CREATE_IN_DOUBT : describeCapaError(err);
        await ctx.db.transaction().execute(async (trx) => {
          await settle(trx, key, 'failed', { status: err.status, code: err.code });
          await markCapaSyncFailed(trx, user.id, message);
        });
        throw new UnrecoverableError(message);
      }
      throw err;
    }
  }
  const created = capaUserId;
  const outcome = await ctx.db.transaction().execute(async (trx) => {
    await settle(trx, key, 'done', { userId: created });
    if (!(await findUserById(trx, user.id))?.capaUserId) await markCapaCreated(trx, user.id, created);
    return opts.withOutcome?.(trx, { capaUserId: created, called });
  });
  return { capaUserId: created, called, outcome };
}
