import { z } from 'zod';
import { findUnqueued, markEnqueued } from '../../db/repositories/inbox.js';
import { defineJob } from '../types.js';
import { processWebhook } from './process-webhook.js';

/**
 * The relay: the inbox (database) is the system of record, Redis only a queue. Anything stored
 * but never queued — Redis was down, or the process died between store and enqueue — is queued
 * here. Job ids are deterministic, so queuing twice is harmless.
 */
export async function relayInbox(ctx: { db: Parameters<typeof findUnqueued>[0]; enqueue: { add: (d: typeof processWebhook, p: { inboxId: number }) => Promise<string> } }, limit = 2000): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = await findUnqueued(ctx.db, { staleQueuedMs: 10 * 60_000, minAgeMs: 2_000, limit: Math.min(limit - total, 500) });
    if (ids.length === 0) break;
    for (const id of ids) await ctx.enqueue.add(processWebhook, { inboxId: id });
    await markEnqueued(ctx.db, ids);
    total += ids.length;
    if (total >= limit) break;
  }
  return total;
}

export const relayInboxJob = defineJob({
  name: 'relay-inbox',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { removeOnComplete: true, removeOnFail: { count: 100 } },
  handler: async (_p, ctx) => ({ relayed: await relayInbox(ctx) }),
});
