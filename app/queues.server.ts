import type { Job } from 'bullmq';
import { z } from 'zod';
import { CapaError, describeCapaError } from '../capa/client.js';
import { customersOfDeliveries } from '../db/repositories/inbox.js';
import { usersOfMessages } from '../db/repositories/notifications.js';
import { externalIdsOf } from '../db/repositories/users.js';
import { jobsByName } from '../jobs/catalog.js';
import { processWebhook } from '../jobs/definitions/process-webhook.js';
import { sendNotification } from '../jobs/definitions/send-notification.js';
import { QUEUE_NAMES, type QueueName } from '../jobs/types.js';
import { withTimeout } from '../lib/time.js';
import type { ActionResult } from './action-result';
import { auditAction, roleAtLeast, type SignedIn } from './auth.server';
import { queueHealth, type QueueHealth } from './health.server';
import { services } from './services.server';

/**
 * The queues page (/queues): each queue's health, the failed jobs in words an operator can act
 * on (with the customer they concern), and retrying one failed job or every failed job of a kind.
 */

/** A failed job's reason in words an operator can act on (the raw text stays for admins). */
export function plainJobError(reason: string | undefined | null): string {
  const r = (reason ?? '').trim();
  if (!r) return 'It failed without giving a reason.';
  const capa = /^Capa (\w+) failed \((?:HTTP (\d{3})|(timeout|network)) ([A-Z0-9_]+)\): ([\s\S]*)$/.exec(r);
  if (capa) {
    const [, op, status, kind, code, msg] = capa;
    const err = new CapaError({
      status: status ? Number(status) : null,
      code: code!,
      capaMessage: msg!,
      op: op!,
      kind: status ? 'http' : (kind as 'timeout' | 'network'),
      retryable: false,
    });
    const words = describeCapaError(err);
    // "will be retried" is not true any more for a job that has failed for good.
    return words.replace(/; the request will be retried\.$/, '.').replace(/; retrying (after \d+ s|shortly)\.$/, '.');
  }
  if (/^invalid payload for/.test(r))
    return 'The job’s data was invalid (an old or broken job); retrying will not help — tell the on-call engineer.';
  if (/^no handler for job/.test(r)) return 'No worker knows this kind of job (a version mismatch between web and worker).';
  if (/stalled more than allowable limit/i.test(r)) return 'The worker stopped while running this job (crash or restart) too many times.';
  if (/SQLITE_BUSY|database is locked/i.test(r)) return 'The database was busy; a retry usually works.';
  if (/ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN/.test(r))
    return 'A service did not answer (connection refused or timed out); a retry usually works once it is back.';
  if (/timed out|timeout/i.test(r)) return 'It took too long and was stopped; a retry usually works.';
  const first = r.split('\n')[0]!;
  return first.length > 240 ? `${first.slice(0, 240)}…` : first;
}

export interface FailedJobView {
  queue: QueueName;
  id: string;
  name: string;
  failedAt: string | null;
  attempts: number;
  plain: string;
  /** Raw reason, admins only. */
  raw: string | null;
  userId: string | null;
  externalUserId: string | null;
  inboxId: number | null;
}

const FAILED_SHOWN = 50;

async function describeFailed(jobs: Job[], queue: QueueName, admin: boolean): Promise<FailedJobView[]> {
  const { db } = await services();
  const views = jobs.map((j): FailedJobView => {
    const def = jobsByName.get(j.name);
    let userId: string | null = null;
    try {
      userId = def?.userOf?.(j.data) ?? null;
    } catch {
      userId = null;
    }
    const inboxId = j.name === processWebhook.name && typeof j.data?.inboxId === 'number' ? (j.data.inboxId as number) : null;
    return {
      queue,
      id: String(j.id),
      name: j.name,
      failedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
      attempts: j.attemptsMade,
      plain: plainJobError(j.failedReason),
      raw: admin ? (j.failedReason ?? null) : null,
      userId,
      externalUserId: null,
      inboxId,
    };
  });
  // Webhook jobs carry an inbox id, not a user: the customer comes from the delivery.
  const inboxIds = views.map((v) => v.inboxId).filter((x): x is number => x !== null);
  if (inboxIds.length) {
    const rows = await customersOfDeliveries(db, inboxIds);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const v of views) {
      const r = v.inboxId !== null ? byId.get(v.inboxId) : undefined;
      if (r) {
        v.userId = r.userId;
        v.externalUserId = r.externalUserId;
      }
    }
  }
  // Message jobs carry the ledger row's id, not a user: the customer comes from the message.
  const messageOf = new Map<FailedJobView, string>();
  jobs.forEach((j, i) => {
    if (j.name === sendNotification.name && typeof j.data?.notificationId === 'string')
      messageOf.set(views[i]!, j.data.notificationId as string);
  });
  if (messageOf.size) {
    const rows = await usersOfMessages(db, [...new Set(messageOf.values())]);
    const byId = new Map(rows.map((r) => [r.id, r.userId]));
    for (const [v, messageId] of messageOf) v.userId ??= byId.get(messageId) ?? null;
  }
  const userIds = [...new Set(views.filter((v) => v.userId && !v.externalUserId).map((v) => v.userId!))];
  if (userIds.length) {
    const rows = await externalIdsOf(db, userIds);
    const byId = new Map(rows.map((r) => [r.id, r.externalUserId]));
    for (const v of views) if (v.userId && !v.externalUserId) v.externalUserId = byId.get(v.userId) ?? null;
  }
  return views;
}

export async function queuesData(who: SignedIn) {
  const { env, queues } = await services();
  const admin = roleAtLeast(who.operator.role, 'admin');
  let health: QueueHealth[] | null = null;
  let redisError: string | null = null;
  const failed: FailedJobView[] = [];
  const failedKinds: Array<{ queue: QueueName; name: string; count: number }> = [];
  try {
    health = await withTimeout(queueHealth(), 3000, 'Redis');
    for (const qh of health) {
      if (qh.counts.failed === 0) continue;
      const q = queues.queue(qh.name);
      const jobs = (await q.getJobs(['failed'], 0, FAILED_SHOWN - 1, false)).filter(Boolean);
      failed.push(...(await describeFailed(jobs, qh.name, admin)));
      // Counts per kind over (up to) the newest 1000 failed jobs: enough to size a "retry all".
      const many = await q.getJobs(['failed'], 0, 999, false);
      const per = new Map<string, number>();
      for (const j of many) if (j) per.set(j.name, (per.get(j.name) ?? 0) + 1);
      for (const [name, count] of per) failedKinds.push({ queue: qh.name, name, count });
    }
  } catch (err) {
    redisError = (err as Error).message;
  }
  const noWorker = health?.filter((q) => q.needsWorker && q.workers === 0).map((q) => q.name) ?? [];
  return {
    health,
    redisError,
    failed,
    failedKinds,
    noWorker,
    backlogLimit: env.OPS_BACKLOG_WARN,
    canRetry: admin,
    boardUrl: '/admin/queues',
  };
}

const QueueNameSchema = z.enum(QUEUE_NAMES as unknown as [QueueName, ...QueueName[]]);
const QueueActionSchema = z.discriminatedUnion('intent', [
  z.object({ intent: z.literal('retry-one'), queue: QueueNameSchema, jobId: z.string().min(1).max(300) }),
  z.object({ intent: z.literal('retry-kind'), queue: QueueNameSchema, name: z.string().min(1).max(100) }),
]);

/** How many failed jobs one "retry all" moves at most (the page says so when there were more). */
export const RETRY_ALL_LIMIT = 1000;

export async function queueAction(request: Request, who: SignedIn, form: FormData): Promise<ActionResult> {
  const { queues } = await services();
  const parsed = QueueActionSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { tone: 'error', message: 'That request names no known queue or job; reload the page and try again.' };
  const a = parsed.data;
  const q = queues.queue(a.queue);
  try {
    if (a.intent === 'retry-one') {
      const job = await withTimeout(q.getJob(a.jobId), 2000, 'Redis');
      const target = `${a.queue}:${a.jobId}`;
      if (!job) {
        await auditAction(request, who, {
          action: 'queues.retry',
          targetType: 'job',
          targetId: target,
          outcome: 'error',
          detail: { reason: 'job not found' },
        });
        return { tone: 'error', message: `Job ${a.jobId} no longer exists (failed jobs are kept 7 days, or someone removed it).` };
      }
      const st = await job.getState();
      if (st !== 'failed') {
        await auditAction(request, who, {
          action: 'queues.retry',
          targetType: 'job',
          targetId: target,
          outcome: 'denied',
          detail: { reason: `state ${st}` },
        });
        return { tone: 'info', message: `Job ${a.jobId} is not failed any more (it is ${st}); nothing to retry.` };
      }
      // A fresh set of attempts: the job's own backoff applies again instead of one last try.
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      await auditAction(request, who, {
        action: 'queues.retry',
        targetType: 'job',
        targetId: target,
        outcome: 'queued',
        detail: { name: job.name },
      });
      return { tone: 'ok', message: `Job ${a.jobId} (${job.name}) is queued again.` };
    }
    let moved = 0;
    let skipped = 0;
    let seen = 0;
    // Page through the failed set, newest first; retried jobs leave it, so restart from 0 each page.
    for (let guard = 0; guard < 50 && moved < RETRY_ALL_LIMIT; guard++) {
      const page = (await withTimeout(q.getJobs(['failed'], skipped, skipped + 199, false), 5000, 'Redis')).filter(Boolean);
      if (page.length === 0) break;
      let progressed = false;
      for (const j of page) {
        seen++;
        if (j.name !== a.name) {
          skipped++;
          continue;
        }
        if (moved >= RETRY_ALL_LIMIT) break;
        try {
          await j.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          moved++;
          progressed = true;
        } catch {
          skipped++; // changed state meanwhile
        }
      }
      if (!progressed && page.length < 200) break;
    }
    await auditAction(request, who, {
      action: 'queues.retry-all',
      targetType: 'queue',
      targetId: a.queue,
      outcome: moved > 0 ? 'queued' : 'ok',
      detail: { name: a.name, moved, seen },
    });
    if (moved === 0) return { tone: 'info', message: `No failed ${a.name} jobs to retry in ${a.queue}.` };
    return {
      tone: 'ok',
      message: `${moved} failed ${a.name} job${moved === 1 ? '' : 's'} queued again${moved >= RETRY_ALL_LIMIT ? ` (the first ${RETRY_ALL_LIMIT}; click again for more)` : ''}.`,
    };
  } catch (err) {
    await auditAction(request, who, {
      action: a.intent === 'retry-one' ? 'queues.retry' : 'queues.retry-all',
      targetType: 'queue',
      targetId: a.queue,
      outcome: 'error',
      detail: { reason: (err as Error).message },
    });
    return { tone: 'error', message: `The job queue (Redis) did not answer, so nothing was retried. (${(err as Error).message})` };
  }
}
