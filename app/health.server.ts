import { sql } from 'kysely';
import { pingRedis } from '../jobs/redis.js';
import { jobsForQueue } from '../jobs/registry.js';
import type { QueueName } from '../jobs/types.js';
import { services } from './services.server';

export const JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'paused', 'completed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface QueueHealth {
  name: QueueName;
  counts: Record<JobState, number>;
  /** Workers connected to this queue right now (BullMQ getWorkers: Redis CLIENT LIST). */
  workers: number;
  /** Whether any declared job runs on this queue (a queue without jobs needs no worker). */
  needsWorker: boolean;
  /** Jobs ready to run but not started (waiting + prioritized). */
  backlog: number;
  /** When the oldest job still waiting was added (ISO), if any. */
  oldestWaitingAt: string | null;
  paused: boolean;
}

/** Counts, workers and backlog of every queue. Throws when Redis does not answer. */
export async function queueHealth(): Promise<QueueHealth[]> {
  const { queues } = await services();
  return Promise.all(
    queues.allQueues().map(async (q) => {
      const [counts, workers, oldest, paused] = await Promise.all([
        q.getJobCounts(...JOB_STATES),
        q.getWorkers(),
        q.getJobs(['wait'], 0, 0, true),
        q.isPaused(),
      ]);
      const c = Object.fromEntries(JOB_STATES.map((s) => [s, counts[s] ?? 0])) as Record<JobState, number>;
      const name = q.name as QueueName;
      const first = oldest[0];
      return {
        name,
        counts: c,
        workers: workers.length,
        needsWorker: jobsForQueue(name).length > 0,
        backlog: c.waiting + c.prioritized,
        oldestWaitingAt: first?.timestamp ? new Date(first.timestamp).toISOString() : null,
        paused,
      };
    }),
  );
}

export interface Check {
  ok: boolean;
  detail?: string;
  [k: string]: unknown;
}

export interface Readiness {
  /** Whether this web process can serve: database and Redis answer. */
  ok: boolean;
  /** Non-critical checks that fail (no worker, backlog): reported, but the web process stays in. */
  degraded: string[];
  checks: Record<'db' | 'redis' | 'workers' | 'backlog', Check>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => { t = setTimeout(() => rej(new Error(`${what} did not answer within ${ms} ms`)), ms); })]).finally(() => clearTimeout(t));
}

/**
 * /readyz. Database and Redis decide readiness (a load balancer should stop sending traffic when
 * either is gone). Workers and backlog are reported but do not take the web process out: with
 * no worker running, the console is exactly where operators must see that warning.
 */
export async function readiness(): Promise<Readiness> {
  const s = await services();
  const checks = {} as Readiness['checks'];
  try {
    await withTimeout(sql`select 1`.execute(s.db), 2000, 'the database');
    checks.db = { ok: true };
  } catch (err) {
    checks.db = { ok: false, detail: (err as Error).message };
  }
  const redisOk = await pingRedis(s.queues.connection, 1000);
  checks.redis = redisOk ? { ok: true } : { ok: false, detail: 'no answer from Redis' };

  if (redisOk) {
    try {
      const qs = await withTimeout(queueHealth(), 3000, 'Redis (queue figures)');
      const missing = qs.filter((q) => q.needsWorker && q.workers === 0).map((q) => q.name);
      checks.workers = {
        ok: missing.length === 0,
        perQueue: Object.fromEntries(qs.map((q) => [q.name, q.workers])),
        ...(missing.length ? { detail: `no worker connected for: ${missing.join(', ')}` } : {}),
      };
      const limit = s.env.OPS_BACKLOG_WARN;
      const over = qs.filter((q) => q.backlog > limit);
      checks.backlog = {
        ok: over.length === 0,
        limit,
        perQueue: Object.fromEntries(qs.map((q) => [q.name, { waiting: q.backlog, active: q.counts.active, delayed: q.counts.delayed, failed: q.counts.failed, oldestWaitingAt: q.oldestWaitingAt }])),
        ...(over.length ? { detail: `more than ${limit} jobs waiting in: ${over.map((q) => q.name).join(', ')}` } : {}),
      };
    } catch (err) {
      checks.workers = { ok: false, detail: (err as Error).message };
      checks.backlog = { ok: false, detail: (err as Error).message };
    }
  } else {
    checks.workers = { ok: false, detail: 'unknown: Redis is not answering' };
    checks.backlog = { ok: false, detail: 'unknown: Redis is not answering' };
  }
  const ok = checks.db.ok && checks.redis.ok;
  const degraded = (['workers', 'backlog'] as const).filter((k) => !checks[k].ok);
  return { ok, degraded, checks };
}
