import { z } from 'zod';
import { defineJob } from '../types.js';

/** Scheduled: queues every stored delivery that has no job that will run (jobs/handlers/relay-inbox.handler.ts). */
export const relayInboxJob = defineJob({
  name: 'relay-inbox',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { removeOnComplete: true, removeOnFail: { count: 100 } },
});
