import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * Scheduled every few seconds: the per-state customer counts' deltas, appended by the database on
 * every change to a customer, folded into user_counts (db/repositories/user-counts.ts), so the users
 * list and the home page read a handful of rows instead of counting a million customers.
 */
export const foldUserCountsJob = defineJob({
  name: 'fold-user-counts',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { attempts: 1, removeOnComplete: { count: 20 }, removeOnFail: { count: 100 } },
});
