import { z } from 'zod';
import { backfillDrift } from '../../db/repositories/drift.js';
import { addRunUsers, createRun, findStaleUsers, openRuns, pruneScheduledRunUsers, settleRun, thresholdsFromEnv } from '../../db/repositories/refresh.js';
import { isoAgo } from '../../lib/time.js';
import { onStateChanged } from '../hooks.js';
import { defineJob } from '../types.js';
import { capaBacklog, enqueueRunFetches, estimateSeconds, refreshRun } from './refresh-run.js';

/**
 * The scheduled refresh cycle (a BullMQ job scheduler on `maintenance`: one schedule however many
 * workers run, so each cycle runs once). Finds customers whose state Capa can still move and whose
 * last confirmation by Capa is older than the state's threshold, and asks Capa about each (stalest
 * first, within REFRESH_MAX_PER_SCAN minus what is still queued from earlier cycles).
 */
export const refreshScan = defineJob({
  name: 'refresh-scan',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { attempts: 1, removeOnComplete: { count: 200 }, removeOnFail: { count: 200 } },
  handler: async (_p, ctx) => {
    const { db, env } = ctx;
    // Housekeeping first: drift entries a crash left unwritten, runs whose watcher was lost.
    const backfilled = await backfillDrift(db, { limit: 1000 });
    for (const run of await openRuns(db)) {
      if (run.status === 'running') await settleRun(db, run);
      // Stored but never queued (Redis was down when the operator started it), or stuck mid-way:
      // queue it (again); the run's job id keeps it to one.
      else if (run.kind !== 'scheduled' && Date.parse(run.createdAt) < Date.now() - (run.status === 'queued' ? 30_000 : 600_000)) await ctx.enqueue.add(refreshRun, { runId: run.id });
    }
    await pruneScheduledRunUsers(db, isoAgo(7 * 86_400_000));

    const backlog = await capaBacklog(ctx);
    const budget = Math.max(0, env.REFRESH_MAX_PER_SCAN - backlog);
    const stale = await findStaleUsers(db, thresholdsFromEnv(env), { limit: budget });
    if (!stale.length) return { stale: 0, backlog, budget, backfilled };
    const { run } = await createRun(db, { kind: 'scheduled', ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC, etaSeconds: estimateSeconds(stale.length, { ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC, backlog }) });
    const ids = stale.map((s) => s.id);
    await addRunUsers(db, run.id, ids);
    const enqueued = await enqueueRunFetches(ctx, run, ids);
    return { runId: run.id, stale: stale.length, enqueued, backlog, budget, backfilled };
  },
});

// A poll that moved a customer's state is drift: record its entry right away (the scan's
// backfill catches any this misses).
onStateChanged(async (ctx, e) => {
  if (!e.cause.startsWith('poll:')) return;
  try {
    await backfillDrift(ctx.db, { userId: e.userId, limit: 50 });
  } catch (err) {
    ctx.logger.warn({ userId: e.userId, err: (err as Error).message }, 'could not record drift entry (the next scan will)');
  }
});
