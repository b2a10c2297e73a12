import { env as readEnv } from '../lib/config.js';
import { alertsEvaluate } from './definitions/alerts-evaluate.js';
import { AUDIT_ANCHOR_EVERY_MS, auditAnchor } from './definitions/audit-anchor.js';
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
import { RETENTION_EVERY_MS, retentionJob } from './definitions/retention.js';
import { sendNotification } from './definitions/send-notification.js';
import type { JobDeclaration, JobHandler, QueueName } from './types.js';

/**
 * The one place that maps a job to its handler, loaded with import() when a worker starts the
 * job's queue. Only jobs/worker.ts imports this module: whoever enqueues imports declarations
 * (jobs/definitions/), so handlers, the Capa calls and the mail transport stay out of the web
 * process. The worker refuses to start if a declared job (jobs/catalog.ts) has no handler here.
 */
type Loader = () => Promise<JobHandler>;

function lazy<P>(job: JobDeclaration<P>, load: () => Promise<{ default: JobHandler<P> }>): [string, Loader] {
  return [job.name, async () => (await load()).default as JobHandler];
}

const HANDLERS: ReadonlyMap<string, Loader> = new Map([
  lazy(processWebhook, () => import('./handlers/process-webhook.handler.js')),
  lazy(createCapaUser, () => import('./handlers/create-capa-user.handler.js')),
  lazy(generateLink, () => import('./handlers/generate-link.handler.js')),
  lazy(fetchDetails, () => import('./handlers/fetch-details.handler.js')),
  lazy(relayInboxJob, () => import('./handlers/relay-inbox.handler.js')),
  lazy(sendNotification, () => import('./handlers/send-notification.handler.js')),
  lazy(notifySweep, () => import('./handlers/notify-sweep.handler.js')),
  lazy(importRow, () => import('./handlers/import-row.handler.js')),
  lazy(importLink, () => import('./handlers/import-link.handler.js')),
  lazy(importRelay, () => import('./handlers/import-relay.handler.js')),
  lazy(refreshScan, () => import('./handlers/refresh-scan.handler.js')),
  lazy(refreshRun, () => import('./handlers/refresh-run.handler.js')),
  lazy(refreshWatch, () => import('./handlers/refresh-watch.handler.js')),
  lazy(expireLinksJob, () => import('./handlers/expire-links.handler.js')),
  lazy(auditAnchor, () => import('./handlers/audit-anchor.handler.js')),
  lazy(alertsEvaluate, () => import('./handlers/alerts-evaluate.handler.js')),
  lazy(retentionJob, () => import('./handlers/retention.handler.js')),
  lazy(foldUserCountsJob, () => import('./handlers/fold-user-counts.handler.js')),
]);

/** The job's handler, or undefined when none is registered. */
export async function loadHandler(name: string): Promise<JobHandler | undefined> {
  return HANDLERS.get(name)?.();
}

export function hasHandler(name: string): boolean {
  return HANDLERS.has(name);
}

/** Repeating jobs: one schedule in Redis however many workers run (BullMQ job schedulers). */
export const SCHEDULES: Array<{ id: string; queue: QueueName; job: string; everyMs: number }> = [
  { id: 'relay-inbox', queue: 'maintenance', job: relayInboxJob.name, everyMs: 5_000 },
  // The cadence is configuration (REFRESH_SCAN_EVERY_SECONDS), read when the worker upserts the
  // schedule; the worker validated the environment before that.
  {
    id: 'refresh-scan',
    queue: 'maintenance',
    job: refreshScan.name,
    get everyMs() {
      return readEnv().REFRESH_SCAN_EVERY_SECONDS * 1000;
    },
  },
  { id: 'expire-links', queue: 'maintenance', job: expireLinksJob.name, everyMs: 300_000 },
  // Per-state customer counts: the deltas the database appended, folded in (a count sums what is left).
  { id: 'fold-user-counts', queue: 'maintenance', job: foldUserCountsJob.name, everyMs: 2_000 },
  { id: 'notify-sweep', queue: 'notifications', job: notifySweep.name, everyMs: 60_000 },
  // Feeds running imports (bounded window of queued rows) and re-queues stored-but-unqueued rows.
  { id: 'import-relay', queue: 'maintenance', job: importRelay.name, everyMs: 1_000 },
  // The audit chain's head written to the log stream (outside the database) and audit_anchors.
  { id: 'audit-anchor', queue: 'maintenance', job: auditAnchor.name, everyMs: AUDIT_ANCHOR_EVERY_MS },
  // The alert rules (ALERTS_EVERY_SECONDS); the web process watches for missing workers itself.
  {
    id: 'alerts-evaluate',
    queue: 'maintenance',
    job: alertsEvaluate.name,
    get everyMs() {
      return readEnv().ALERTS_EVERY_SECONDS * 1000;
    },
  },
  // The retention policy (RETENTION_<STATE>_YEARS); a run with every state at 0 erases nothing.
  { id: 'retention', queue: 'maintenance', job: retentionJob.name, everyMs: RETENTION_EVERY_MS },
];
