import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * The scheduled refresh cycle (a BullMQ job scheduler on `maintenance`: one schedule however many
 * workers run, so each cycle runs once). Finds customers whose state Capa can still move and whose
 * last confirmation by Capa is older than the state's threshold, and asks Capa about each (stalest
 * first, within REFRESH_MAX_PER_SCAN minus what is still queued from earlier cycles).
 */
export const refreshScan = defineJob({
  name: 'refresh-scan',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { attempts: 1, removeOnComplete: { count: 200 }, removeOnFail: { count: 200 } },
});
