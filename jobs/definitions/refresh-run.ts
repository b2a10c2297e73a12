import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { addRunUsers, findStaleUsers, getRun, runUserIds, settleRun, thresholdsFromEnv, updateRun } from '../../db/repositories/refresh.js';
import type { RefreshRun } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';
import { Queues } from '../queues.js';
import { defineJob, type JobContext } from '../types.js';
import { fetchDetails } from './fetch-details.js';

/**
 * Refresh runs: a set of customers whose KYC details are asked of Capa, one fetch-details job per
 * customer on the `capa` queue (so the shared Capa limiter and the 429 pause apply), at most one
 * in flight per customer (fetch-details' job id `details-<userId>`).
 */

/**
 * Refresh fetches are background work: BullMQ serves jobs without a priority first, so an
 * operator's "create customer" or "generate link" never waits behind a 10k-customer refresh.
 */
export const REFRESH_PRIORITY = 10;
/** How often a running run checks whether every customer has an answer. */
export const WATCH_EVERY_MS = 2_000;
/** The most customers one "refresh all stale now" asks about. */
export const MAX_RUN_SIZE = 100_000;
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
      return { name: fetchDetails.name, data, opts: { ...fetchDetails.options, priority: REFRESH_PRIORITY, jobId: fetchDetails.jobId!(data) } };
    }),
  );
}

/** Seconds until `calls` more Capa calls are done at `ratePerSec`, behind `backlog` queued ones. */
export function estimateSeconds(calls: number, opts: { ratePerSec: number; backlog?: number; rateLimitedForMs?: number }): number {
  if (calls <= 0) return 0;
  return Math.ceil(((opts.backlog ?? 0) + calls) / opts.ratePerSec + (opts.rateLimitedForMs ?? 0) / 1000);
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
      for (let i = 0; i < blocked.length; i += ADD_CONCURRENCY) await Promise.all(blocked.slice(i, i + ADD_CONCURRENCY).map((id) => q.remove(id)));
    }
  }
  let enqueued = 0;
  for (let i = 0; i < userIds.length; i += BULK_CHUNK) {
    const chunk = userIds.slice(i, i + BULK_CHUNK);
    await addFetches(ctx, chunk.map((userId) => ({ userId, cause: `refresh:${run.id}` })));
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

/** An operator's "refresh all stale now" or "refresh these N selected" (created by the console). */
export const refreshRun = defineJob({
  name: 'refresh-run',
  queue: 'maintenance',
  schema: z.object({ runId: z.number().int().positive() }),
  jobId: (p) => `refresh-run-${p.runId}`,
  options: { attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 7 * 86400 }, removeOnFail: { age: 7 * 86400 } },
  handler: async ({ runId }, ctx) => {
    const run = await getRun(ctx.db, runId);
    if (!run) throw new UnrecoverableError(`refresh run ${runId} not found`);
    if (run.status === 'done' || run.status === 'failed') return { skipped: run.status };
    if (run.status === 'running') return { runId, status: 'running' };
    try {
      if (run.kind === 'all_stale' && run.status === 'queued') {
        // "All stale" means stale when the run starts, not when the preview was shown.
        const stale = await findStaleUsers(ctx.db, thresholdsFromEnv(ctx.env), { limit: MAX_RUN_SIZE });
        await addRunUsers(ctx.db, run.id, stale.map((s) => s.id));
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

/** Follows a running run until every customer has an answer, then closes it (one delayed job per check). */
export const refreshWatch = defineJob({
  name: 'refresh-watch',
  queue: 'maintenance',
  schema: z.object({ runId: z.number().int().positive(), n: z.number().int().positive() }),
  // Two chains for one run (a retried start) merge on the same ids.
  jobId: (p) => `refresh-watch-${p.runId}-${p.n}`,
  // A check every 2 s per open run: not worth a job_runs row each (the run row is the record).
  trackRuns: false,
  options: { attempts: 3, backoff: { type: 'fixed', delay: 2000 }, removeOnComplete: true, removeOnFail: { count: 100 } },
  handler: async ({ runId, n }, ctx) => {
    const run = await getRun(ctx.db, runId);
    if (!run || run.status !== 'running') return { stopped: run?.status ?? 'missing' };
    const { settled, progress } = await settleRun(ctx.db, run);
    if (!settled) await ctx.enqueue.add(refreshWatch, { runId, n: n + 1 }, { delay: WATCH_EVERY_MS });
    return { ...progress, settled };
  },
});
