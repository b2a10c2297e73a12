import type { Job, JobsOptions } from 'bullmq';
import type { ZodType } from 'zod';
import type { CapaClient } from '../capa/client.js';
import type { Db } from '../db/client.js';
import type { DataKey } from '../db/encryption.js';
import type { Env } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';

export const QUEUE_NAMES = ['webhooks', 'capa', 'maintenance', 'notifications'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export interface Enqueuer {
  add<P>(def: JobDefinition<P>, payload: P, opts?: JobsOptions): Promise<string>;
}

export interface JobContext {
  env: Env;
  db: Db;
  capa: CapaClient;
  logger: Logger;
  dataKeys: DataKey[];
  enqueue: Enqueuer;
  job: Job;
  /** The user the job concerns, once known (recorded on the job run for the timeline). */
  setUser(userId: string): void;
}

export interface JobDefinition<P = any> {
  name: string;
  queue: QueueName;
  schema: ZodType<P>;
  options?: JobsOptions;
  /** Deterministic job id where one job per entity is meant (BullMQ ignores a second add). */
  jobId?: (payload: P) => string;
  /** The user this payload concerns, for the per-user timeline. */
  userOf?: (payload: P) => string | null;
  handler: (payload: P, ctx: JobContext) => Promise<unknown>;
  /** Called once when the job has failed for good (attempts exhausted or unrecoverable). */
  onFinalFailure?: (payload: P, error: string, ctx: JobContext) => Promise<void>;
  /** Record each attempt in job_runs (the per-user timeline). Default true. */
  trackRuns?: boolean;
}

export function defineJob<P>(def: JobDefinition<P>): JobDefinition<P> {
  return def;
}
