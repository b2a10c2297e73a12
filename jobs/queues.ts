import { Queue, QueueEvents, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { redisConnection, type RedisTarget } from '../lib/redis.js';
import { QUEUE_NAMES, type Enqueuer, type JobDeclaration, type QueueName } from './types.js';

export type WaitResult =
  | { state: 'completed'; jobId: string; result: unknown }
  | { state: 'failed'; jobId: string; error: string }
  /** Accepted by Redis but not finished within the wait: the outcome lands later. */
  | { state: 'queued'; jobId: string }
  /** Redis unreachable: nothing was queued. */
  | { state: 'unavailable'; error: string };

export type JobPresence = 'missing' | 'pending' | 'finished';

const ADD_TIMEOUT_MS = 2_000;
const READY_GRACE_MS = 500;

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The one way to enqueue: payloads are validated by the job's own schema, job ids and default
 * options come from the job definition. Used by the web process and by jobs that chain jobs.
 */
export class Queues implements Enqueuer {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly events = new Map<QueueName, QueueEvents>();
  private readonly ownConnections: Redis[] = [];
  readonly connection: Redis;

  constructor(private readonly opts: { redis: RedisTarget; prefix: string; connection?: Redis }) {
    this.connection = opts.connection ?? redisConnection(opts.redis, 'producer');
    if (this.connection.status === 'ready') this.wasReady = true;
    else
      this.connection.once('ready', () => {
        this.wasReady = true;
      });
  }

  get prefix(): string {
    return this.opts.prefix;
  }

  /**
   * False while Redis is known to be down: the connection was up and is lost (reconnecting).
   * True when connected, and while the very first connection is being made (an add then waits
   * a short grace for it, see ready()).
   */
  get connected(): boolean {
    const status = this.connection.status;
    if (status === 'ready') return true;
    return !this.wasReady && (status === 'wait' || status === 'connecting' || status === 'connect');
  }

  private wasReady = false;

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.opts.prefix });
      q.on('error', () => {}); // outages surface as rejected adds, not as crashes
      this.queues.set(name, q);
    }
    return q;
  }

  allQueues(): Queue[] {
    return QUEUE_NAMES.map((n) => this.queue(n));
  }

  async add<P>(def: JobDeclaration<P>, payload: P, opts: JobsOptions = {}): Promise<string> {
    const data = def.schema.parse(payload);
    const jobId = opts.jobId ?? def.jobId?.(data);
    await this.ready();
    // BullMQ waits for a connection before sending; bound the wait so callers answer "queued
    // later" instead of hanging. A late add is harmless: ids are deterministic and the
    // database (inbox, import rows, ledger) is what the relays re-queue from.
    const job = await withTimeout(
      this.queue(def.queue).add(def.name, data, { ...def.options, ...opts, ...(jobId ? { jobId } : {}) }),
      ADD_TIMEOUT_MS,
      'Redis did not accept the job in time',
    );
    return String(job.id);
  }

  /**
   * Many jobs of one declaration in one round trip (BullMQ addBulk): each payload validated and
   * given its job id and options as add() does. The webhook intake queues what one commit stored
   * this way.
   */
  async addBulk<P>(def: JobDeclaration<P>, payloads: P[]): Promise<string[]> {
    if (payloads.length === 0) return [];
    const jobs = payloads.map((payload) => {
      const data = def.schema.parse(payload);
      const jobId = def.jobId?.(data);
      return { name: def.name, data, opts: { ...def.options, ...(jobId ? { jobId } : {}) } };
    });
    await this.ready();
    const added = await withTimeout(this.queue(def.queue).addBulk(jobs), ADD_TIMEOUT_MS, 'Redis did not accept the jobs in time');
    return added.map((j) => String(j.id));
  }

  /** Fails fast while Redis is down (after a short grace for a connection being set up). */
  private async ready(): Promise<void> {
    const c = this.connection;
    if (c.status === 'ready') return;
    if (c.status === 'end') throw new Error('Redis connection closed');
    // One shared waiter: during an outage thousands of requests must not each add a listener.
    this.readyWaiter ??= new Promise<void>((resolve) =>
      c.once('ready', () => {
        this.readyWaiter = undefined;
        resolve();
      }),
    );
    await withTimeout(this.readyWaiter, READY_GRACE_MS, 'Redis is unavailable');
  }

  private readyWaiter: Promise<void> | undefined;

  /**
   * Where each job stands in Redis, in one round trip however many ids: `missing` (never added,
   * removed, or lost with Redis's data), `finished` (completed or failed for good) or `pending`
   * (waiting, delayed, active: it will still run). Reads two fields of each job's hash rather
   * than asking BullMQ for each job's state, which scans the wait list once per job.
   */
  async jobPresence(queue: QueueName, jobIds: string[]): Promise<JobPresence[]> {
    if (jobIds.length === 0) return [];
    await this.ready();
    const q = this.queue(queue);
    const pipe = this.connection.pipeline();
    for (const id of jobIds) pipe.hmget(q.toKey(id), 'timestamp', 'finishedOn');
    const replies = (await withTimeout(pipe.exec(), ADD_TIMEOUT_MS, 'Redis did not answer in time')) ?? [];
    return jobIds.map((_, i) => {
      const [err, value] = replies[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const [timestamp, finishedOn] = value as [string | null, string | null];
      return timestamp === null ? 'missing' : finishedOn !== null ? 'finished' : 'pending';
    });
  }

  /**
   * Adds a job again whose earlier run finished without doing its work (the job id is
   * deterministic, so a plain add would be ignored while the finished job is kept).
   */
  async requeue<P>(def: JobDeclaration<P>, payload: P): Promise<string> {
    const data = def.schema.parse(payload);
    const jobId = def.jobId?.(data);
    if (!jobId) return this.add(def, data);
    await this.ready();
    await withTimeout(this.queue(def.queue).remove(jobId), ADD_TIMEOUT_MS, 'Redis did not answer in time');
    return this.add(def, data, { jobId });
  }

  /** Enqueue, then wait up to `timeoutMs` for the job's result. Never throws. */
  async addAndWait<P>(def: JobDeclaration<P>, payload: P, timeoutMs: number, opts: JobsOptions = {}): Promise<WaitResult> {
    let jobId: string;
    try {
      // Listen before adding: a job finishing between the add and the first listen would
      // otherwise be reported as still queued.
      await withTimeout(this.queueEvents(def.queue).waitUntilReady(), READY_GRACE_MS * 4, 'Redis is unavailable');
      jobId = await this.add(def, payload, opts);
    } catch (err) {
      return { state: 'unavailable', error: (err as Error).message };
    }
    const q = this.queue(def.queue);
    try {
      const job = await q.getJob(jobId);
      if (!job) return { state: 'queued', jobId };
      const result = await job.waitUntilFinished(this.queueEvents(def.queue), timeoutMs);
      return { state: 'completed', jobId, result };
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      if (/timed out|timeout/i.test(msg)) return { state: 'queued', jobId };
      return { state: 'failed', jobId, error: msg };
    }
  }

  private queueEvents(name: QueueName): QueueEvents {
    let e = this.events.get(name);
    if (!e) {
      const conn = redisConnection(this.opts.redis, 'worker');
      this.ownConnections.push(conn);
      e = new QueueEvents(name, { connection: conn, prefix: this.opts.prefix });
      e.on('error', () => {});
      this.events.set(name, e);
    }
    return e;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.events.values()].map((e) => e.close()));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    for (const c of this.ownConnections) c.disconnect();
    if (!this.opts.connection) this.connection.disconnect();
  }
}
