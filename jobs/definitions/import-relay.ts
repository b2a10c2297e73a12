import { z } from 'zod';
import { defineJob } from '../types.js';

/** Scheduled: feeds running imports and resumes imports paused by a Capa outage (jobs/imports/orchestration.ts). */
export const importRelay = defineJob({
  name: 'import-relay',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { removeOnComplete: true, removeOnFail: { count: 100 } },
  trackRuns: false,
});
