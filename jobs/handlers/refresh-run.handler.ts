import { UnrecoverableError } from 'bullmq';
import { addRunUsers, findStaleUsers, getRun, runUserIds, thresholdsFromEnv, updateRun } from '../../db/repositories/refresh.js';
import { nowIso } from '../../lib/time.js';
import { MAX_RUN_SIZE, refreshRun } from '../definitions/refresh-run.js';
import { enqueueRunFetches } from '../refresh/fetches.js';
import { defineHandler } from '../types.js';

export default defineHandler(refreshRun, {
  handler: async ({ runId }, ctx) => {
    const run = await getRun(ctx.db, runId);
    if (!run) throw new UnrecoverableError(`refresh run ${runId} not found`);
    if (run.status === 'done' || run.status === 'failed') return { skipped: run.status };
    if (run.status === 'running') return { runId, status: 'running' };
    try {
      if (run.kind === 'all_stale' && run.status === 'queued') {
        // "All stale" means stale when the run starts, not when the preview was shown.
        const stale = await findStaleUsers(ctx.db, thresholdsFromEnv(ctx.env), { limit: MAX_RUN_SIZE });
        await addRunUsers(
          ctx.db,
          run.id,
          stale.map((s) => s.id),
        );
      }
      // A resumed run (crash mid-enqueue) adds everything again: ids dedupe what is still queued.
      const ids = await runUserIds(ctx.db, run.id);
      const fresh = (await getRun(ctx.db, run.id))!;
      const enqueued = await enqueueRunFetches(ctx, fresh, ids);
      return { runId, enqueued };
    } catch (err) {
      if (err instanceof UnrecoverableError || ctx.job.attemptsMade + 1 >= (ctx.job.opts.attempts ?? 1)) {
        await updateRun(ctx.db, run.id, { status: 'failed', finishedAt: nowIso(), error: (err as Error).message.slice(0, 500) });
      }
      throw err;
    }
  },
});
