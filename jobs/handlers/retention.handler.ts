import { retentionPolicy } from '../../domain/retention.js';
import { retentionJob } from '../definitions/retention.js';
import { applyRetention } from '../retention.js';
import { defineHandler } from '../types.js';

export default defineHandler(retentionJob, {
  handler: async (_p, ctx) => {
    const r = await applyRetention(ctx, retentionPolicy(ctx.env), { jobId: ctx.job.id ?? null });
    const erased = Object.values(r.erased).reduce((a, b) => a + b, 0);
    if (erased || r.failed) ctx.logger.info({ runId: r.runId, erased: r.erased, held: r.held, failed: r.failed }, 'retention applied');
    return r;
  },
});
