import { Queue, QueueEvents, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { redisConnection } from './redis.js';
import { QUEUE_NAMES, type Enqueuer, type JobDefinition, type QueueName } from './types.js';

export type WaitResult =
  | { state: 'completed'; jobId: string; result: unknown }
  | { state: 'failed'; jobId: string; error: string }
  /** Accepted by Redis but not finished within the wait: the outcome lands later. */
  | { state: 'queued'; jobId: string }
  /** Redis unreachable: nothing was queued. */
  | { state: 'unavailable'; error: string };

/**
 * The one way to enqueue: payloads are validated by the job's own schema, job ids and default
 * options come from the job definition. Used by the web process and by jobs that chain jobs.
 */
export class Queues implements Enqueuer {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly events = new Map<QueueName, QueueEvents>();
  private readonly ownConnections: Redis[] = [];
  readonly connection: Redis;

  constructor(private readonly opts: { redisUrl: string; prefix: string; connection?: Redis }) {
    this.connection = opts.connection ?? redisConnection(opts.redisUrl, 'producer');
  }

  get prefix(): string {
    return this.opts.prefix;
  }

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

  async add<P>(def: JobDefinition<P>, payload: P, opts: JobsOptions = {}): Promise<string> {
    const data = def.schema.parse(payload);
    const jobId = opts.jobId ?? def.jobId?.(data);
    const job = await this.queue(def.queue).add(def.name, data, { ...def.options, ...opts, ...(jobId ? { jobId } : {}) });
    return String(job.id);
  }

  /** Enqueue, then wait up to `timeoutMs` for the job's result. Never throws. */
  async addAndWait<P>(def: JobDefinition<P>, payload: P, timeoutMs: number, opts: JobsOptions = {}): Promise<WaitResult> {
    let jobId: string;
    try {
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
      const conn = redisConnection(this.opts.redisUrl, 'worker');
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
