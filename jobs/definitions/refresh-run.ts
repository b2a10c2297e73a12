import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * Refresh runs: a set of customers whose KYC details are asked of Capa, one fetch-details job per
 * customer on the `capa` queue (so the shared Capa limiter and the 429 pause apply), at most one
 * in flight per customer (fetch-details' job id `details-<userId>`).
 */

/** The most customers one "refresh all stale now" asks about. */
export const MAX_RUN_SIZE = 100_000;

/** Seconds until `calls` more Capa calls are done at `ratePerSec`, behind `backlog` queued ones. */
export function estimateSeconds(calls: number, opts: { ratePerSec: number; backlog?: number; rateLimitedForMs?: number }): number {
  if (calls <= 0) return 0;
  return Math.ceil(((opts.backlog ?? 0) + calls) / opts.ratePerSec + (opts.rateLimitedForMs ?? 0) / 1000);
}

/** An operator's "refresh all stale now" or "refresh these N selected" (created by the console). */
export const refreshRun = defineJob({
  name: 'refresh-run',
  queue: 'maintenance',
  schema: z.object({ runId: z.number().int().positive() }),
  jobId: (p) => `refresh-run-${p.runId}`,
  options: {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 7 * 86400 },
    removeOnFail: { age: 7 * 86400 },
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
});
