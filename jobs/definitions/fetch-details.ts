import { z } from 'zod';
import { defineJob } from '../types.js';

/** Reads Get KYC Details and applies Capa's truth (drift is recorded by applySignal). */
export const fetchDetails = defineJob({
  name: 'fetch-details',
  queue: 'capa',
  schema: z.object({ userId: z.string().min(1), cause: z.string().max(200).optional(), requestId: z.string().max(100).optional() }),
  // One in flight per customer; an operator's explicit request (or a delivery's conflict check,
  // which must not be answered by a fetch that asked before it arrived) gets its own id.
  jobId: (p) => (p.requestId ? `details-${p.userId}-${p.requestId}` : `details-${p.userId}`),
  userOf: (p) => p.userId,
  options: { attempts: 6, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { age: 7 * 86400 } },
});
