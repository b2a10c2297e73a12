import { getRun, settleRun } from '../../db/repositories/refresh.js';
import { refreshWatch } from '../definitions/refresh-run.js';
import { WATCH_EVERY_MS } from '../refresh/fetches.js';
import { defineHandler } from '../types.js';

export default defineHandler(refreshWatch, {
  handler: async ({ runId, n }, ctx) => {
    const run = await getRun(ctx.db, runId);
    if (!run || run.status !== 'running') return { stopped: run?.status ?? 'missing' };
    const { settled, progress } = await settleRun(ctx.db, run);
    if (!settled) await ctx.enqueue.add(refreshWatch, { runId, n: n + 1 }, { delay: WATCH_EVERY_MS });
    return { ...progress, settled };
  },
});
