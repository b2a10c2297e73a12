import type { Job, JobsOptions } from 'bullmq';
import type { ZodType } from 'zod';
import type { CapaClient } from '../capa/client.js';
import type { Db } from '../db/client.js';
import type { DataKey } from '../db/encryption.js';
import type { NotificationLocale } from '../db/schema.js';
import type { Env } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';

export const QUEUE_NAMES = ['webhooks', 'capa', 'maintenance', 'notifications'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export interface Enqueuer {
  add<P>(def: JobDeclaration<P>, payload: P, opts?: JobsOptions): Promise<string>;
  /** Many jobs of one declaration at once, where the enqueuer can (jobs/queues.ts). */
  addBulk?<P>(def: JobDeclaration<P>, payloads: P[]): Promise<string[]>;
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

/** A KYC link was recorded (generate-link); `notify` asks for it to be e-mailed. */
export interface LinkIssuedEvent {
  userId: string;
  linkId: string;
  notify: boolean;
  locale?: NotificationLocale | null;
}

/** A customer's KYC state moved; `cause` is `<type>:<id>` as in the state history (webhook:12, poll:<job>). */
export interface StateChangedEvent {
  userId: string;
  from: string;
  to: string;
  cause: string;
}

/**
 * What enqueueing needs to know about a job, and nothing more: whoever adds a job imports its
 * declaration (jobs/definitions/), never its handler, so the web process stays free of handler
 * code, the Capa calls and the mail transport.
 */
export interface JobDeclaration<P = any> {
  name: string;
  queue: QueueName;
  schema: ZodType<P>;
  options?: JobsOptions;
  /** Deterministic job id where one job per entity is meant (BullMQ ignores a second add). */
  jobId?: (payload: P) => string;
  /** The user this payload concerns, for the per-user timeline. */
  userOf?: (payload: P) => string | null;
  /** Record each attempt in job_runs (the per-user timeline). Default true. */
  trackRuns?: boolean;
}

/** What runs a job: the default export of `jobs/handlers/<name>.handler.ts`, loaded by the registry. */
export interface JobHandler<P = any> {
  handler: (payload: P, ctx: JobContext) => Promise<unknown>;
  /** Called once when the job has failed for good (attempts exhausted or unrecoverable). */
  onFinalFailure?: (payload: P, error: string, ctx: JobContext) => Promise<void>;
}

export function defineJob<P>(def: JobDeclaration<P>): JobDeclaration<P> {
  return def;
}

/** A handler for `job` (the declaration only types the payload; nothing of it is needed at run time). */
export function defineHandler<P>(_job: JobDeclaration<P>, h: JobHandler<P>): JobHandler<P> {
  return h;
}
