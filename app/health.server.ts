import { pingDb } from '../db/client.js';
import { pingRedis } from '../lib/redis.js';
import { withTimeout } from '../lib/time.js';
import { jobsForQueue } from '../jobs/catalog.js';
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
  /** Non-critical checks that fail (no worker, backlog, a restarted process): reported, but the web process stays in. */
  degraded: string[];
  /** `processes` only under the all-in-one launcher (`npm start`). */
  checks: Record<'db' | 'redis' | 'workers' | 'backlog', Check> & { processes?: Check };
}

/** One child of the all-in-one launcher (server/start.ts), as it reports it. */
export interface LauncherChild {
  name: string;
  up: boolean;
  pid: number | null;
  startedAt: string;
  restarts: number;
  /** Crashes inside the launcher's crash-loop window. */
  recentCrashes: number;
  lastExit: { code: number | null; signal: string | null; at: string } | null;
}

/** What the launcher sends this web process over its IPC channel whenever a child starts or dies. */
export interface LauncherReport {
  kind: 'kyc-launcher';
  crashLoop: { crashes: number; windowMinutes: number };
  children: LauncherChild[];
}

const LAUNCHER = Symbol.for('kyc-desk.launcher-report');
type LauncherHolder = { [LAUNCHER]?: LauncherReport | null };
const launcherHolder = globalThis as unknown as LauncherHolder;

// Started by `npm start` (server/start.ts passes an IPC channel to the web child only): listen
// for its reports and ask for the current one. Once per process, however often this module loads.
if (process.env.KYC_PROCESS === 'web' && typeof process.send === 'function' && !(LAUNCHER in launcherHolder)) {
  launcherHolder[LAUNCHER] = null;
  process.on('message', (m: unknown) => {
    if ((m as LauncherReport | null)?.kind === 'kyc-launcher') launcherHolder[LAUNCHER] = m as LauncherReport;
  });
  // The channel must not keep the process alive on its own (web shuts down by closing its server).
  process.channel?.unref();
  process.send({ kind: 'kyc-launcher-hello' }, undefined, {}, () => {});
}

/** The launcher's children, restarts and last exits; undefined when not started by `npm start`. */
export function processesCheck(report = launcherHolder[LAUNCHER]): Check | undefined {
  if (!report) return undefined;
  const down = report.children.filter((c) => !c.up);
  const restarted = report.children.filter((c) => c.recentCrashes > 0);
  const exitWords = (c: LauncherChild) =>
    c.lastExit ? (c.lastExit.signal ? `killed by ${c.lastExit.signal}` : `exit code ${c.lastExit.code}`) + ` at ${c.lastExit.at}` : '';
  const detail = [
    ...down.map((c) => `${c.name} is down (${exitWords(c)}), restarting`),
    ...restarted
      .filter((c) => c.up)
      .map((c) => `${c.name} restarted ${c.recentCrashes}× in the last ${report.crashLoop.windowMinutes} minutes (last ${exitWords(c)})`),
  ];
  return {
    ok: down.length === 0 && restarted.length === 0,
    perProcess: Object.fromEntries(
      report.children.map((c) => [c.name, { up: c.up, pid: c.pid, startedAt: c.startedAt, restarts: c.restarts, lastExit: c.lastExit }]),
    ),
    crashLoop: report.crashLoop,
    ...(detail.length ? { detail: detail.join('; ') } : {}),
  };
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
    await withTimeout(pingDb(s.db), 2000, 'the database');
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
        perQueue: Object.fromEntries(
          qs.map((q) => [
            q.name,
            {
              waiting: q.backlog,
              active: q.counts.active,
              delayed: q.counts.delayed,
              failed: q.counts.failed,
              oldestWaitingAt: q.oldestWaitingAt,
            },
          ]),
        ),
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
  const processes = processesCheck();
  if (processes) checks.processes = processes;
  const ok = checks.db.ok && checks.redis.ok;
  const degraded = (['workers', 'backlog', 'processes'] as const).filter((k) => checks[k] && !checks[k].ok);
  return { ok, degraded, checks };
}
