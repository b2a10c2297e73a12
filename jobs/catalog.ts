import { alertsEvaluate } from './definitions/alerts-evaluate.js';
import { auditAnchor } from './definitions/audit-anchor.js';
import { createCapaUser } from './definitions/create-capa-user.js';
import { expireLinksJob } from './definitions/expire-links.js';
import { fetchDetails } from './definitions/fetch-details.js';
import { foldUserCountsJob } from './definitions/fold-user-counts.js';
import { generateLink } from './definitions/generate-link.js';
import { importLink } from './definitions/import-link.js';
import { importRelay } from './definitions/import-relay.js';
import { importRow } from './definitions/import-row.js';
import { notifySweep } from './definitions/notify-sweep.js';
import { processWebhook } from './definitions/process-webhook.js';
import { refreshRun, refreshWatch } from './definitions/refresh-run.js';
import { refreshScan } from './definitions/refresh-scan.js';
import { relayInboxJob } from './definitions/relay-inbox.js';
import { retentionJob } from './definitions/retention.js';
import { sendNotification } from './definitions/send-notification.js';
import type { JobDeclaration, QueueName } from './types.js';

/**
 * Every job, declared once: what the queue views and health checks need to know about a job
 * (name, queue, payload schema, whose customer it is). Declarations only; the handlers are in
 * jobs/registry.ts, which only the worker loads.
 */
export const JOBS = [
  processWebhook,
  createCapaUser,
  generateLink,
  fetchDetails,
  relayInboxJob,
  sendNotification,
  notifySweep,
  importRow,
  importLink,
  importRelay,
  refreshScan,
  refreshRun,
  refreshWatch,
  expireLinksJob,
  auditAnchor,
  alertsEvaluate,
  retentionJob,
  foldUserCountsJob,
] as const satisfies readonly JobDeclaration[];

export const jobsByName: ReadonlyMap<string, JobDeclaration> = new Map(JOBS.map((j) => [j.name, j as JobDeclaration]));

export function jobsForQueue(q: QueueName): JobDeclaration[] {
  return JOBS.filter((j) => j.queue === q) as JobDeclaration[];
}
