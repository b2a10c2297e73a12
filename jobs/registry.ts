import { createCapaUser } from './definitions/create-capa-user.js';
import { fetchDetails } from './definitions/fetch-details.js';
import { generateLink } from './definitions/generate-link.js';
import { importLink } from './definitions/import-link.js';
import { importRelay } from './definitions/import-relay.js';
import { importRow } from './definitions/import-row.js';
import { processWebhook } from './definitions/process-webhook.js';
import { relayInboxJob } from './definitions/relay-inbox.js';
import { expireLinksJob } from './definitions/expire-links.js';
import { refreshRun, refreshWatch } from './definitions/refresh-run.js';
import { refreshScan } from './definitions/refresh-scan.js';
import { env as readEnv } from '../lib/config.js';
import { notifySweep } from './definitions/notify-sweep.js';
import { sendNotification } from './definitions/send-notification.js';
import { AUDIT_ANCHOR_EVERY_MS, auditAnchor } from './definitions/audit-anchor.js';
// Registers the notification hooks (link issued, state changed) in every process that runs jobs.
import './notifications/register.js';
import type { JobDefinition, QueueName } from './types.js';

/** Every job, declared once. The worker refuses to start if a queue has a job without handler. */
export const JOBS = [processWebhook, createCapaUser, generateLink, fetchDetails, relayInboxJob, sendNotification, notifySweep, importRow, importLink, importRelay, refreshScan, refreshRun, refreshWatch, expireLinksJob, auditAnchor] as const satisfies readonly JobDefinition[];

export const jobsByName: ReadonlyMap<string, JobDefinition> = new Map(JOBS.map((j) => [j.name, j as JobDefinition]));

export function jobsForQueue(q: QueueName): JobDefinition[] {
  return JOBS.filter((j) => j.queue === q) as JobDefinition[];
}

/** Repeating jobs: one schedule in Redis however many workers run (BullMQ job schedulers). */
export const SCHEDULES: Array<{ id: string; queue: QueueName; job: string; everyMs: number }> = [
  { id: 'relay-inbox', queue: 'maintenance', job: relayInboxJob.name, everyMs: 5_000 },
  // Issue 5. The cadence is configuration (REFRESH_SCAN_EVERY_SECONDS), read when the worker
  // upserts the schedule; the worker validated the environment before that.
  { id: 'refresh-scan', queue: 'maintenance', job: refreshScan.name, get everyMs() { return readEnv().REFRESH_SCAN_EVERY_SECONDS * 1000; } },
  { id: 'expire-links', queue: 'maintenance', job: expireLinksJob.name, everyMs: 300_000 },
  { id: 'notify-sweep', queue: 'notifications', job: notifySweep.name, everyMs: 60_000 },
  // Feeds running imports (bounded window of queued rows) and re-queues stored-but-unqueued rows.
  { id: 'import-relay', queue: 'maintenance', job: importRelay.name, everyMs: 1_000 },
  // The audit chain's head written to the log stream (outside the database) and audit_anchors.
  { id: 'audit-anchor', queue: 'maintenance', job: auditAnchor.name, everyMs: AUDIT_ANCHOR_EVERY_MS },
];
