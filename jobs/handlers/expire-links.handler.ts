import { expireLinks } from '../../db/repositories/refresh.js';
import { expireLinksJob } from '../definitions/expire-links.js';
import { defineHandler } from '../types.js';

export default defineHandler(expireLinksJob, {
  handler: async (_p, ctx) => {
    const r = await expireLinks(ctx.db, ctx.env.KYC_LINK_LIFETIME_HOURS * 3_600_000);
    if (r.linksExpired) ctx.logger.info({ linksExpired: r.linksExpired, usersFlagged: r.usersFlagged }, 'KYC links expired');
    return { linksExpired: r.linksExpired, usersFlagged: r.usersFlagged };
  },
});
