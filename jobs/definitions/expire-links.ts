import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * Scheduled: active KYC links older than KYC_LINK_LIFETIME_HOURS are marked expired and customers
 * who have not started are flagged "link expired — resend" (users.linkExpired). Generating a new
 * link clears the flag (links repository). Expiry never changes the KYC state.
 */
export const expireLinksJob = defineJob({
  name: 'expire-links',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
});
