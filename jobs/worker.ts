import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { UnrecoverableError, Worker, type Job, type RepeatOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { CapaClient, CapaError } from '../capa/client.js';
import { createDb, migrateToLatest, type Db } from '../db/client.js';
import { parseDataKeys, type DataKey } from '../db/encryption.js';
import { recordJobEnd, recordJobStart } from '../db/repositories/job-runs.js';
import { env as readEnv, type Env } from '../lib/config.js';
import { logger as rootLogger, type Logger } from '../lib/logger.js';
import { checkAlertEnv } from './alerts/config.js';
import { CapaCallStats } from './capa-metrics.js';
import { Queues } from './queues.js';
import { redisConnection, type RedisTarget } from '../lib/redis.js';
import { JOBS, jobsByName, jobsForQueue } from './catalog.js';
import { SCHEDULES, hasHandler, loadHandler } from './registry.js';
import { QUEUE_NAMES, type JobContext, type JobHandler, type QueueName } from './types.js';
import { selfCheck } from '../db/self-check.js';

export interface WorkerDeps {
  env: Env;
  db: Db;
  capa: CapaClient;
  logger?: Logger;
  dataKeys?: DataKey[];
  /** REDIS_URL, or the Sentinel group (Env.redis). */
  redis: RedisTarget;
  prefix: string;
}

export interface RunningWorkers {
  workers: Worker[];
  queues: Queues;
  close(timeoutMs?: number): Promise<void>;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.slice(0, 2000);
  return String(err).slice(0, 2000);
}

/** Starts one BullMQ worker per queue (or the given ones) in this process. */
export async function startWorkers(
  deps: WorkerDeps,
  opts: { queues?: QueueName[]; concurrency?: number; schedules?: boolean; scheduleWatchdogMs?: number } = {},
): Promise<RunningWorkers> {
  const log = deps.logger ?? rootLogger;
  const names = opts.queues ?? [...QUEUE_NAMES];

  // Refuse to start with a job nobody can run: every declared job must have a handler, and the
  // handlers of the queues this worker runs are loaded (and so checked) before any job is taken.
  for (const j of JOBS) {
    if (!hasHandler(j.name)) throw new Error(`job ${j.name} has no handler`);
  }
  const handlers = new Map<string, JobHandler>();
  for (const qn of names) {
    for (const j of jobsForQueue(qn)) {
      const h = await loadHandler(j.name);
      if (typeof h?.handler !== 'function') throw new Error(`job ${j.name} has no handler`);
      handlers.set(j.name, h);
    }
  }
  const queues = new Queues({ redis: deps.redis, prefix: deps.prefix });

  const connections: Redis[] = [];
  const workers: Worker[] = [];
  for (const qn of names) {
    if (jobsForQueue(qn).length === 0) continue;
    const connection = redisConnection(deps.redis, 'worker');
    connections.push(connection);
    const rate = deps.env.CAPA_RATE_LIMIT_PER_SEC;
    const worker: Worker = new Worker(
      qn,
      async (job: Job) => {
        const def = jobsByName.get(job.name);
        const run = handlers.get(job.name);
        if (!def || !run || def.queue !== qn) throw new UnrecoverableError(`no handler for job ${job.name} on queue ${qn}`);
        const parsed = def.schema.safeParse(job.data);
        if (!parsed.success)
          throw new UnrecoverableError(`invalid payload for ${job.name}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
        let userId = def.userOf?.(parsed.data) ?? null;
        const track = def.trackRuns !== false;
        const runId = track
          ? await recordJobStart(deps.db, { userId, jobName: job.name, jobId: String(job.id), attempt: job.attemptsMade + 1 })
          : 0;
        const end: typeof recordJobEnd = async (...args) => {
          if (track) await recordJobEnd(...args);
        };
        let childLog: Logger | undefined;
        const ctx: JobContext = {
          env: deps.env,
          db: deps.db,
          capa: deps.capa,
          // Made on first use: a pino child (with its redaction setup) per job showed in profiles.
          get logger() {
            return (childLog ??= log.child({ job: job.name, jobId: job.id }));
          },
          dataKeys: deps.dataKeys ?? [],
          enqueue: queues,
          job,
          setUser: (id) => {
            userId = id;
          },
        };
        try {
          const result = await run.handler(parsed.data, ctx);
          await end(deps.db, runId, 'completed', { result, userId });
          return result;
        } catch (err) {
          if (err instanceof CapaError && err.status === 429) {
            // Capa says slow down: pause this queue for every worker (shared limiter) and put the
            // job back without burning an attempt.
            const wait = err.retryAfterMs ?? 1000;
            await end(deps.db, runId, 'retrying', { error: `rate-limited by Capa for ${wait} ms`, userId });
            await worker.rateLimit(wait);
            throw Worker.RateLimitError();
          }
          const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
          await end(deps.db, runId, final ? 'failed' : 'retrying', { error: describeError(err), userId });
          if (final && run.onFinalFailure) {
            await run
              .onFinalFailure(parsed.data, describeError(err), ctx)
              .catch((e) => log.error({ job: job.name, err: describeError(e) }, 'onFinalFailure failed'));
          }
          throw err;
        }
      },
      {
        connection,
        prefix: deps.prefix,
        concurrency: opts.concurrency ?? (qn === 'webhooks' ? deps.env.WEBHOOK_CONCURRENCY : deps.env.WORKER_CONCURRENCY),
        // Every Capa call goes through the `capa` queue, whose limiter is kept in Redis and so is
        // shared by all worker processes.
        ...(qn === 'capa'
          ? { limiter: rate >= 1 ? { max: Math.floor(rate), duration: 1000 } : { max: 1, duration: Math.ceil(1000 / rate) } }
          : {}),
        autorun: true,
      },
    );
    worker.on('error', (err) => log.warn({ queue: qn, err: err.message }, 'worker error'));
    worker.on('failed', (job, err) => log.warn({ queue: qn, job: job?.name, jobId: job?.id, err: err.message }, 'job failed'));
    workers.push(worker);
  }

  // Job schedulers live only in Redis. A Redis that comes back without its data (no persistence,
  // a failover to a replica that lagged, FLUSHALL) has none, and nothing else would create them
  // again: the relay among them, so acknowledged deliveries would wait for a process restart.
  // They are ensured at start, checked again whenever the connection is re-established, and by a
  // watchdog every SCHEDULE_WATCHDOG_MS (FLUSHALL keeps the connection up).
  const watchdog =
    opts.schedules === false
      ? null
      : new ScheduleWatchdog(
          queues,
          SCHEDULES.filter((s) => names.includes(s.queue)),
          log,
          opts.scheduleWatchdogMs,
        );
  await watchdog?.start();

  let closing: Promise<void> | undefined;
  return {
    workers,
    queues,
    close(timeoutMs = deps.env.SHUTDOWN_TIMEOUT_MS) {
      closing ??= (async () => {
        watchdog?.stop();
        // Order: stop taking work and let active jobs finish → queues → Redis.
        const graceful = Promise.all(workers.map((w) => w.close()));
        const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
        if ((await Promise.race([graceful.then(() => 'ok' as const), timer])) === 'timeout') {
          log.warn('workers did not finish in time; forcing close (active jobs will be retried as stalled)');
          await Promise.allSettled(workers.map((w) => w.close(true)));
        }
        await queues.close();
        for (const c of connections) c.disconnect();
      })();
      return closing;
    },
  };
}

/** How often a worker checks that every job scheduler it runs still exists in Redis. */
export const SCHEDULE_WATCHDOG_MS = 10_000;

type Schedule = (typeof SCHEDULES)[number];

/** BullMQ repeat options of a schedule: a fixed period, or a cron pattern for calendar jobs. */
function repeatOf(s: { everyMs?: number; pattern?: string; tz?: string }): RepeatOptions {
  if (s.pattern) return { pattern: s.pattern, ...(s.tz ? { tz: s.tz } : {}) };
  return { every: s.everyMs! };
}

/**
 * Keeps this worker's job schedulers in Redis. At start every schedule is upserted (a changed
 * period takes effect); afterwards only a scheduler that is missing, or whose next run is gone
 * (BullMQ creates the next run when the current one starts; a Redis error at that moment loses
 * it), is created again — an upsert of a healthy scheduler would move its next run. Several
 * workers may repair at once: an upsert keeps one scheduler per id.
 */
export class ScheduleWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly onReady = () => void this.check('reconnect');
  private stopped = false;

  constructor(
    private readonly queues: Queues,
    private readonly schedules: readonly Schedule[],
    private readonly log: Logger,
    private readonly everyMs = SCHEDULE_WATCHDOG_MS,
  ) {}

  async start(): Promise<void> {
    try {
      for (const s of this.schedules) await this.upsert(s);
    } catch (err) {
      // Redis not there yet: the watchdog creates them once it is.
      this.log.warn({ err: describeError(err) }, 'could not create the job schedulers yet; the watchdog retries');
    }
    // 'ready' is emitted again after every reconnect (a restarted or failed-over Redis).
    this.queues.connection.on('ready', this.onReady);
    this.timer = setInterval(() => void this.check('watchdog'), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.queues.connection.off('ready', this.onReady);
  }

  /** Re-creates whatever schedule is missing; one check at a time. */
  check(reason: 'watchdog' | 'reconnect'): Promise<void> {
    this.checking ??= (async () => {
      try {
        for (const s of this.schedules) {
          if (this.stopped) return;
          const problem = await this.problemWith(s);
          if (!problem) continue;
          await this.upsert(s);
          this.log.warn(
            { scheduler: s.id, queue: s.queue, reason },
            `job scheduler ${s.id} ${problem} in Redis (Redis restarted without its data?); created again`,
          );
        }
      } catch (err) {
        // Redis unreachable or frozen: the next check (or the next reconnect) tries again.
        if (!this.stopped) this.log.debug({ err: describeError(err) }, 'job scheduler check failed');
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  private async problemWith(s: Schedule): Promise<string | null> {
    const q = this.queues.queue(s.queue);
    const scheduler = await q.getJobScheduler(s.id);
    if (!scheduler) return 'was missing';
    if (scheduler.next == null || (await q.getJob(`repeat:${s.id}:${scheduler.next}`))) return null;
    // That run may just have started (creating the next one) and finished in between.
    const again = await q.getJobScheduler(s.id);
    if (again?.next != null && again.next !== scheduler.next) return null;
    return 'had no next run';
  }

  private async upsert(s: Schedule): Promise<void> {
    await this.queues
      .queue(s.queue)
      .upsertJobScheduler(s.id, repeatOf(s), { name: s.job, data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } });
  }
}

export function capaClientFromEnv(e: Env, onCall?: ConstructorParameters<typeof CapaClient>[0]['onCall']): CapaClient {
  return new CapaClient({ baseUrl: e.capaBaseUrl, apiKey: e.CAPA_API_KEY, timeoutMs: e.CAPA_TIMEOUT_MS, ...(onCall ? { onCall } : {}) });
}

async function main(): Promise<void> {
  process.env.KYC_PROCESS ??= 'worker';
  const e = readEnv();
  const log = rootLogger.child({ proc: 'worker' });
  // Signals are taken from the first moment: a SIGTERM during start-up stops the worker as soon
  // as it is up instead of killing it half-started.
  let stopRequested: string | null = null;
  let stop: ((signal: string) => Promise<void>) | null = null;
  const onSignal = (signal: string) => {
    if (stop) void stop(signal);
    else stopRequested ??= signal;
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // Two cores shared by the web process, Redis, the database and workers: the queue can wait a
  // few milliseconds, the intake's answer (Capa's retry clock) should not (docs/performance.md).
  try {
    if (os.getPriority() < e.WORKER_NICE) os.setPriority(e.WORKER_NICE);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not lower the worker process priority');
  }

  // A bad ALERTS_RULES stops the worker here, named, rather than failing every evaluation.
  checkAlertEnv(e);
  // Worker writes are derived from rows already stored durably: see docs/decisions/003.
  const db = createDb(e.DATABASE_URL, { durability: 'normal' });
  await migrateToLatest(db);
  // Capa call counts/latency go to Redis, where the web process's /metrics reads them.
  const capaStats = new CapaCallStats(redisConnection(e.redis, 'producer'), e.QUEUE_PREFIX);
  const running = await startWorkers({
    env: e,
    db,
    capa: capaClientFromEnv(e, capaStats.record),
    logger: log,
    dataKeys: parseDataKeys(e.KYC_DETAILS_KEY),
    redis: e.redis,
    prefix: e.QUEUE_PREFIX,
  });
  log.info({ queues: running.workers.map((w) => w.name) }, 'worker started');
  let stopping = false;
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker shutting down');
    const hard = setTimeout(() => {
      log.error('shutdown exceeded the hard timeout; exiting');
      process.exit(1);
    }, e.SHUTDOWN_TIMEOUT_MS + 5_000);
    hard.unref();
    await running.close();
    await capaStats.close().catch(() => {});
    await db.destroy();
    log.info('worker stopped');
    process.exit(0);
  };
  if (stopRequested) return stop(stopRequested);
  for (const w of await selfCheck({ redis: running.queues.connection, db })) log.warn(`SELF-CHECK: ${w}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error('worker failed to start:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
