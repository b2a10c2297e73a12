import { foldUserCounts } from '../../db/repositories/user-counts.js';
import { foldUserCountsJob } from '../definitions/fold-user-counts.js';
import { defineHandler } from '../types.js';

export default defineHandler(foldUserCountsJob, {
  handler: async (_p, ctx) => ({ folded: await foldUserCounts(ctx.db) }),
});
