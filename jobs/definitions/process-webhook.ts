import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * Applies one stored Capa delivery through the state machine. Safe to run twice: a delivery
 * that is no longer `received` is left alone, and the state machine makes repeats no-ops.
 */
export const processWebhook = defineJob({
  name: 'process-webhook',
  queue: 'webhooks',
  schema: z.object({ inboxId: z.number().int().positive() }),
  jobId: (p) => `wh-${p.inboxId}`,
  // The delivery row itself is the record of this work (status, effect, error, attempts).
  trackRuns: false,
  options: {
    attempts: 8,
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 7 * 86400 },
  },
});
