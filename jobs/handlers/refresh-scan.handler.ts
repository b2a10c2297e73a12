import { backfillDrift } from '../../db/repositories/drift.js';
import {
  addRunUsers,
  createRun,
  findStaleUsers,
  openRuns,
  pruneScheduledRunUsers,
  settleRun,
  thresholdsFromEnv,
} from '../../db/repositories/refresh.js';
import { isoAgo } from '../../lib/time.js';
import { estimateSeconds, refreshRun } from '../definitions/refresh-run.js';
import { refreshScan } from '../definitions/refresh-scan.js';
import { capaBacklog, enqueueRunFetches } from '../refresh/fetches.js';
import { defineHandler } from '../types.js';

export default defineHandler(refreshScan, {
  handler: async (_p, ctx) => {
    const { db, env } = ctx;
    // Housekeeping first: drift entries a crash left unwritten, runs whose watcher was lost.
    const backfilled = await backfillDrift(db, { limit: 1000 });
    for (const run of await openRuns(db)) {
      if (run.status === 'running') await settleRun(db, run);
      // Stored but never queued (Redis was down when the operator started it), or stuck mid-way:
      // queue it (again); the run's job id keeps it to one.
      else if (run.kind !== 'scheduled' && Date.parse(run.createdAt) < Date.now() - (run.status === 'queued' ? 30_000 : 600_000))
        await ctx.enqueue.add(refreshRun, { runId: run.id });
    }
    await pruneScheduledRunUsers(db, isoAgo(7 * 86_400_000));

    const backlog = await capaBacklog(ctx);
    const budget = Math.max(0, env.REFRESH_MAX_PER_SCAN - backlog);
    const stale = await findStaleUsers(db, thresholdsFromEnv(env), { limit: budget });
    if (!stale.length) return { stale: 0, backlog, budget, backfilled };
    const { run } = await createRun(db, {
      kind: 'scheduled',
      ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC,
      etaSeconds: estimateSeconds(stale.length, { ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC, backlog }),
    });
    const ids = stale.map((s) => s.id);
    await addRunUsers(db, run.id, ids);
    const enqueued = await enqueueRunFetches(ctx, run, ids);
    return { runId: run.id, stale: stale.length, enqueued, backlog, budget, backfilled };
  },
});
