import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import type { Job } from 'bullmq';
import { z } from 'zod';
import { customersOfDeliveries } from '../db/repositories/inbox.js';
import { usersOfMessages } from '../db/repositories/notifications.js';
import { externalIdsOf } from '../db/repositories/users.js';
import { jobsByName } from '../jobs/catalog.js';
import { processWebhook } from '../jobs/definitions/process-webhook.js';
import { sendNotification } from '../jobs/definitions/send-notification.js';
import { QUEUE_NAMES, type QueueName } from '../jobs/types.js';
import { withTimeout } from '../lib/time.js';
import type { ActionResult, Message } from './action-result';
import { auditAction, roleAtLeast, type SignedIn } from './auth.server';
import { queueHealth, type QueueHealth } from './health.server';
import { storedErrorMessage } from './plain-errors.server';
import { services } from './services.server';

/**
 * The queues page (/queues): each queue's health, the failed jobs in words an operator can act
 * on (with the customer they concern), and retrying one failed job or every failed job of a kind.
 */

export interface FailedJobView {
  queue: QueueName;
  id: string;
  name: string;
  failedAt: string | null;
  attempts: number;
  /** Why it failed, in words an operator can act on (the raw text stays for admins). */
  plain: Message;
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
      plain: storedErrorMessage(j.failedReason, { final: true }),
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

const say = (tone: ActionResult['tone'], key: string, values?: ActionResult['values']): ActionResult => ({
  tone,
  code: `queues:retry.${key}`,
  ...(values ? { values } : {}),
});

/** How many failed jobs one "retry all" moves at most (the page says so when there were more). */
export const RETRY_ALL_LIMIT = 1000;

export async function queueAction(request: Request, who: SignedIn, form: FormData): Promise<ActionResult> {
  const { queues } = await services();
  const parsed = QueueActionSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return say('error', 'unknown_target');
  const a = parsed.data;
  const q = queues.queue(a.queue);
  try {
    if (a.intent === 'retry-one') {
      const job = await withTimeout(q.getJob(a.jobId), 2000, 'Redis');
      const target = `${a.queue}:${a.jobId}`;
      if (!job) {
        await auditAction(request, who, {
          action: AUDIT_ACTIONS.queuesRetry,
          targetType: 'job',
          targetId: target,
          outcome: 'error',
          detail: { reason: 'job not found' },
        });
        return say('error', 'job_gone', { jobId: a.jobId });
      }
      const st = await job.getState();
      if (st !== 'failed') {
        await auditAction(request, who, {
          action: AUDIT_ACTIONS.queuesRetry,
          targetType: 'job',
          targetId: target,
          outcome: 'denied',
          detail: { reason: `state ${st}` },
        });
        return say('info', 'job_not_failed', { jobId: a.jobId, state: st });
      }
      // A fresh set of attempts: the job's own backoff applies again instead of one last try.
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      await auditAction(request, who, {
        action: AUDIT_ACTIONS.queuesRetry,
        targetType: 'job',
        targetId: target,
        outcome: 'queued',
        detail: { name: job.name },
      });
      return say('ok', 'job_retried', { jobId: a.jobId, name: job.name });
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
      action: AUDIT_ACTIONS.queuesRetryAll,
      targetType: 'queue',
      targetId: a.queue,
      outcome: moved > 0 ? 'queued' : 'ok',
      detail: { name: a.name, moved, seen },
    });
    if (moved === 0) return say('info', 'kind_none', { name: a.name, queue: a.queue });
    return moved >= RETRY_ALL_LIMIT
      ? say('ok', 'kind_retried_first', { count: moved, name: a.name, limit: RETRY_ALL_LIMIT })
      : say('ok', 'kind_retried', { count: moved, name: a.name });
  } catch (err) {
    await auditAction(request, who, {
      action: a.intent === 'retry-one' ? AUDIT_ACTIONS.queuesRetry : AUDIT_ACTIONS.queuesRetryAll,
      targetType: 'queue',
      targetId: a.queue,
      outcome: 'error',
      detail: { reason: (err as Error).message },
    });
    return say('error', 'redis_down', { detail: (err as Error).message });
  }
}
