import { updateRun } from '../../db/repositories/refresh.js';
import type { RefreshRun } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';
import { fetchDetails } from '../definitions/fetch-details.js';
import { refreshWatch } from '../definitions/refresh-run.js';
import { Queues } from '../queues.js';
import type { JobContext } from '../types.js';

/**
 * Refresh fetches are background work: BullMQ serves jobs without a priority first, so an
 * operator's "create customer" or "generate link" never waits behind a 10k-customer refresh.
 */
export const REFRESH_PRIORITY = 10;
/** How often a running run checks whether every customer has an answer. */
export const WATCH_EVERY_MS = 2_000;
const ADD_CONCURRENCY = 200;
const BULK_CHUNK = 500;

/**
 * Queues refresh fetches in bulk: the same validation, job ids and default options as
 * `Queues.add` (all taken from the job definition), one Redis round trip per chunk. Queueing 10k
 * one by one costs seconds of CPU in the worker process and slows the Capa worker running beside
 * it (bench/refresh.ts). Candidate for a `Queues.addBulk`.
 */
async function addFetches(ctx: Pick<JobContext, 'enqueue'>, payloads: Array<{ userId: string; cause: string }>): Promise<void> {
  const q = capaQueue(ctx);
  if (!q) {
    await Promise.all(payloads.map((p) => ctx.enqueue.add(fetchDetails, p, { priority: REFRESH_PRIORITY })));
    return;
  }
  await q.addBulk(
    payloads.map((raw) => {
      const data = fetchDetails.schema.parse(raw);
      return {
        name: fetchDetails.name,
        data,
        opts: { ...fetchDetails.options, priority: REFRESH_PRIORITY, jobId: fetchDetails.jobId!(data) },
      };
    }),
  );
}

function capaQueue(ctx: Pick<JobContext, 'enqueue'>) {
  return ctx.enqueue instanceof Queues ? ctx.enqueue.queue('capa') : null;
}

/** Capa calls already queued ahead (waiting, prioritized, delayed for backoff). */
export async function capaBacklog(ctx: Pick<JobContext, 'enqueue'>): Promise<number> {
  const q = capaQueue(ctx);
  if (!q) return 0;
  const c = await q.getJobCounts('waiting', 'prioritized', 'delayed', 'paused');
  return Object.values(c).reduce((a, b) => a + b, 0);
}

/**
 * Hands every customer of the run to the capa queue. A customer whose last fetch failed for good
 * keeps its `details-<id>` job in the failed set for a week, which would swallow every new add with
 * that id; those are removed first so the customer is asked again (its failure stays in job_runs).
 */
export async function enqueueRunFetches(ctx: JobContext, run: RefreshRun, userIds: string[]): Promise<number> {
  // Answers count from here: set before the first job can run.
  const startedAt = run.startedAt ?? nowIso();
  await updateRun(ctx.db, run.id, { status: 'enqueuing', startedAt });
  const q = capaQueue(ctx);
  if (q && userIds.length) {
    const failed = new Set(await q.getRanges(['failed'], 0, -1));
    if (failed.size) {
      const blocked = userIds.map((id) => `details-${id}`).filter((id) => failed.has(id));
      for (let i = 0; i < blocked.length; i += ADD_CONCURRENCY)
        await Promise.all(blocked.slice(i, i + ADD_CONCURRENCY).map((id) => q.remove(id)));
    }
  }
  let enqueued = 0;
  for (let i = 0; i < userIds.length; i += BULK_CHUNK) {
    const chunk = userIds.slice(i, i + BULK_CHUNK);
    await addFetches(
      ctx,
      chunk.map((userId) => ({ userId, cause: `refresh:${run.id}` })),
    );
    enqueued += chunk.length;
    if (enqueued % 2_000 < BULK_CHUNK || enqueued === userIds.length) {
      await updateRun(ctx.db, run.id, { enqueued });
      await ctx.job.updateProgress({ enqueued, total: userIds.length }).catch(() => {});
    }
    // Let the Capa worker in this process run between chunks (a 10k cycle must not starve it).
    await new Promise((r) => setImmediate(r));
  }
  await updateRun(ctx.db, run.id, { status: 'running', enqueued, enqueuedAt: nowIso() });
  await ctx.enqueue.add(refreshWatch, { runId: run.id, n: 1 }, { delay: WATCH_EVERY_MS });
  return enqueued;
}
