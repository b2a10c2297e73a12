import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * Every minute (one BullMQ job scheduler, however many workers): due follow-ups, programmes a
 * missed hook did not start or stop, messages waiting for a link, and messages Redis lost.
 */
export const notifySweep = defineJob({
  name: 'notify-sweep',
  queue: 'notifications',
  schema: z.object({}).passthrough(),
  // Runs every minute with no customer: job_runs (the per-user timeline) would only fill up.
  trackRuns: false,
  options: { removeOnComplete: true, removeOnFail: { count: 100 } },
});
