import { z } from 'zod';
import { expireLinks } from '../../db/repositories/refresh.js';
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
  handler: async (_p, ctx) => {
    const r = await expireLinks(ctx.db, ctx.env.KYC_LINK_LIFETIME_HOURS * 3_600_000);
    if (r.linksExpired) ctx.logger.info({ linksExpired: r.linksExpired, usersFlagged: r.usersFlagged }, 'KYC links expired');
    return { linksExpired: r.linksExpired, usersFlagged: r.usersFlagged };
  },
});
