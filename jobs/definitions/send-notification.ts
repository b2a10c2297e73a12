import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * Sends one ledger row (jobs/handlers/send-notification.handler.ts). Safe to run twice: the row
 * must still be `queued`, and the send is claimed before it is attempted.
 */
export const sendNotification = defineJob({
  name: 'send-notification',
  queue: 'notifications',
  schema: z.object({ notificationId: z.string().min(1).max(100) }),
  jobId: (p) => `notify-${p.notificationId}`,
  options: { attempts: 8, backoff: { type: 'exponential', delay: 5_000 }, removeOnComplete: true, removeOnFail: { age: 7 * 86400 } },
});
