import { z } from 'zod';
import { defineJob } from '../types.js';

/** Once a day: the policy counts whole years, so a day late is never early. */
export const RETENTION_EVERY_MS = 86_400_000;

/**
 * Scheduled: applies the retention policy (RETENTION_<STATE>_YEARS). Customers past the years
 * their KYC state keeps them are erased like an admin's erasure, each audited as
 * evidence.retention; a legal hold keeps a customer; each run is recorded for /audit/retention.
 */
export const retentionJob = defineJob({
  name: 'retention',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { attempts: 3, backoff: { type: 'exponential', delay: 60_000 }, removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } },
});
