import { createCapaUser } from './definitions/create-capa-user.js';
import { fetchDetails } from './definitions/fetch-details.js';
import { generateLink } from './definitions/generate-link.js';
import { importLink } from './definitions/import-link.js';
import { importRelay } from './definitions/import-relay.js';
import { importRow } from './definitions/import-row.js';
import { processWebhook } from './definitions/process-webhook.js';
import { relayInboxJob } from './definitions/relay-inbox.js';
import { notifySweep } from './definitions/notify-sweep.js';
import { sendNotification } from './definitions/send-notification.js';
// Registers the notification hooks (link issued, state changed) in every process that runs jobs.
import './notifications/register.js';
import type { JobDefinition, QueueName } from './types.js';

/** Every job, declared once. The worker refuses to start if a queue has a job without handler. */
export const JOBS = [processWebhook, createCapaUser, generateLink, fetchDetails, relayInboxJob, sendNotification, notifySweep, importRow, importLink, importRelay] as const satisfies readonly JobDefinition[];

export const jobsByName: ReadonlyMap<string, JobDefinition> = new Map(JOBS.map((j) => [j.name, j as JobDefinition]));

export function jobsForQueue(q: QueueName): JobDefinition[] {
  return JOBS.filter((j) => j.queue === q) as JobDefinition[];
}

/** Repeating jobs: one schedule in Redis however many workers run (BullMQ job schedulers). */
export const SCHEDULES: Array<{ id: string; queue: QueueName; job: string; everyMs: number }> = [
  { id: 'relay-inbox', queue: 'maintenance', job: relayInboxJob.name, everyMs: 5_000 },
  { id: 'notify-sweep', queue: 'notifications', job: notifySweep.name, everyMs: 60_000 },
  // Feeds running imports (bounded window of queued rows) and re-queues stored-but-unqueued rows.
  { id: 'import-relay', queue: 'maintenance', job: importRelay.name, everyMs: 1_000 },
];
