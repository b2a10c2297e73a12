import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { CapaError, describeCapaError } from '../../capa/client.js';
import { claim, settle } from '../../db/repositories/idempotency.js';
import { findUserById, markCapaCreated, markCapaSyncFailed } from '../../db/repositories/users.js';
import { defineJob } from '../types.js';
import { generateLink } from './generate-link.js';

export const LinkRequestSchema = z.object({
  country: z.enum(['MX', 'DO']),
  redirectUri: z.string().max(2000).nullable().optional(),
  requestId: z.string().min(1).max(100),
  /** E-mail the link to the customer once it exists (notifications). */
  notify: z.boolean().optional(),
  /** Language of that e-mail; unset: from the customer's country. */
  locale: z.enum(['es', 'en']).nullable().optional(),
});

/**
 * Creates the customer in Capa once. The side effect is claimed (idempotency key on the
 * externalUserId) before the call, so a retried or duplicated job never creates twice.
 */
export const createCapaUser = defineJob({
  name: 'create-capa-user',
  queue: 'capa',
  schema: z.object({ userId: z.string().min(1), requestedBy: z.string().nullable().optional(), sendLink: LinkRequestSchema.nullable().optional() }),
  jobId: (p) => `create-${p.userId}`,
  userOf: (p) => p.userId,
  options: { attempts: 8, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 3600 }, removeOnFail: { age: 7 * 86400 } },
  handler: async ({ userId, requestedBy, sendLink }, ctx) => {
    const user = await findUserById(ctx.db, userId);
    if (!user) throw new UnrecoverableError(`user ${userId} not found`);
    let capaUserId = user.capaUserId;
    if (!capaUserId) {
      const key = `capa-create:${user.externalUserId}`;
      const c = await claim(ctx.db, key, 'capa-create');
      if (!c.fresh && c.status === 'done') {
        capaUserId = (c.result as { userId: string }).userId;
      } else {
        try {
          const r = await ctx.capa.createUser({ type: user.type, email: user.email, externalUserId: user.externalUserId, ...(user.alias ? { alias: user.alias } : {}) });
          capaUserId = r.userId;
          await settle(ctx.db, key, 'done', { userId: capaUserId });
        } catch (err) {
          if (err instanceof CapaError && !err.retryable) {
            const reused = err.status === 409 && (!c.fresh || err.attempts > 1);
            const message = reused
              ? 'Capa already has this externalUserId and an earlier attempt did not record its Capa id (the process may have stopped mid-call). Ask Capa for the userId.'
              : describeCapaError(err);
            await settle(ctx.db, key, 'failed', { status: err.status, code: err.code });
            await markCapaSyncFailed(ctx.db, userId, message);
            throw new UnrecoverableError(message);
          }
          throw err;
        }
      }
      await markCapaCreated(ctx.db, userId, capaUserId);
    }
    if (sendLink) {
      await ctx.enqueue.add(generateLink, { userId, ...sendLink, requestedBy: requestedBy ?? null });
    }
    return { capaUserId };
  },
});
