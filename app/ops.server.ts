import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import { z } from 'zod';
import { CapaClient, CapaError, describeCapaError } from '../capa/client.js';
import { WEBHOOK_NOTIFICATION_STATUSES, type WebhookNotificationDetail, type WebhookNotificationListItem, type WebhookNotificationStatus } from '../capa/types.js';
import { auditForTarget } from '../db/repositories/audit.js';
import { claim, forget, settle } from '../db/repositories/idempotency.js';
import { getDelivery, markEnqueued, resetForReprocess } from '../db/repositories/inbox.js';
import { deliveryContext, inboxEventNames, INBOX_SORTABLE, INBOX_STATUSES, listInbox, VERDICTS, type InboxQuery, type InboxSort } from '../db/repositories/inbox-query.js';
import { getSetting, putSetting, SETTING_KEYS, type CapaWebhookSetting } from '../db/repositories/settings.js';
import type { SignatureVerdict, WebhookStatus } from '../db/schema.js';
import { isoAgo, nowIso } from '../lib/time.js';
import { processWebhook } from '../jobs/definitions/process-webhook.js';
import { sendNotification } from '../jobs/definitions/send-notification.js';
import { jobsByName } from '../jobs/catalog.js';
import { QUEUE_NAMES, type QueueName } from '../jobs/types.js';
import { auditAction, canSeePii, roleAtLeast, type SignedIn } from './auth.server';
import { queueHealth, type QueueHealth } from './health.server';
import { webCapaStats } from './metrics.server';
import { maskDeep } from './pii';
import { services } from './services.server';

/**
 * Facade for the operations views (issue 8): webhook inbox, queues summary, Capa's delivery log,
 * webhook settings. Route modules call these after their guard; everything that touches the
 * database, Redis or Capa is here.
 */

export type Tone = 'ok' | 'error' | 'info';
export interface ActionResult {
  tone: Tone;
  message: string;
}

const RequestIdSchema = z.string().trim().min(8).max(100).regex(/^[A-Za-z0-9_-]+$/);
const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => { t = setTimeout(() => rej(new Error(`${what} did not answer within ${ms} ms`)), ms); })]).finally(() => clearTimeout(t));
}

// ================================================================== webhook inbox

export interface InboxParams extends InboxQuery {
  sort: InboxSort;
  dir: 'asc' | 'desc';
  page: number;
  pageSize: number;
  from: string;
  to: string;
}

/** URL → query. Unknown or malformed values are dropped, never an error: a shared link always opens. */
export function parseInboxParams(sp: URLSearchParams): InboxParams {
  const n = (v: string | null, d: number) => (v && /^\d{1,6}$/.test(v) ? Number(v) : d);
  const verdict = sp.get('verdict');
  const status = sp.get('status');
  const dup = sp.get('dup');
  const sort = sp.get('sort');
  const from = sp.get('from') ?? '';
  const to = sp.get('to') ?? '';
  const size = n(sp.get('size'), 50);
  return {
    customer: sp.get('customer')?.trim().slice(0, 200) || null,
    event: sp.get('event')?.trim().slice(0, 64) || null,
    verdict: (VERDICTS as readonly string[]).includes(verdict ?? '') ? (verdict as SignatureVerdict) : null,
    status: (INBOX_STATUSES as readonly string[]).includes(status ?? '') ? (status as WebhookStatus) : null,
    duplicate: dup === 'duplicate' || dup === 'new' ? dup : null,
    changedOnly: sp.get('changed') === '1',
    errorsOnly: sp.get('errors') === '1',
    receivedFrom: ISO_DAY.test(from) ? `${from}T00:00:00.000Z` : null,
    receivedTo: ISO_DAY.test(to) ? `${to}T23:59:59.999Z` : null,
    from: ISO_DAY.test(from) ? from : '',
    to: ISO_DAY.test(to) ? to : '',
    sort: (INBOX_SORTABLE as readonly string[]).includes(sort ?? '') ? (sort as InboxSort) : 'id',
    dir: sp.get('dir') === 'asc' ? 'asc' : 'desc',
    page: Math.max(1, n(sp.get('page'), 1)),
    pageSize: [25, 50, 100, 200].includes(size) ? size : 50,
  };
}

export async function inboxListData(who: SignedIn, sp: URLSearchParams) {
  const { db } = await services();
  const params = parseInboxParams(sp);
  const [page, events] = await Promise.all([listInbox(db, params), inboxEventNames(db)]);
  return {
    ...page,
    params,
    events,
    verdicts: VERDICTS,
    statuses: INBOX_STATUSES,
    canReprocess: roleAtLeast(who.operator.role, 'admin'),
  };
}

function maskHeaders(headersJson: string, pii: boolean): Record<string, string> {
  let h: Record<string, string> = {};
  try {
    h = JSON.parse(headersJson) as Record<string, string>;
  } catch {
    return {};
  }
  if (!pii && h['x-forwarded-for']) h['x-forwarded-for'] = '(hidden for your role)';
  return h;
}

/** The stored body as shown: pretty JSON; for viewers, personal data masked (unparseable bodies hidden). */
export function displayBody(raw: string, pii: boolean): { text: string; masked: boolean; json: boolean } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return pii ? { text: raw, masked: false, json: false } : { text: `(${Buffer.byteLength(raw)} bytes that are not valid JSON — hidden for your role)`, masked: true, json: false };
  }
  return { text: JSON.stringify(pii ? parsed : maskDeep(parsed), null, 2), masked: !pii, json: true };
}

export async function inboxDetailData(who: SignedIn, id: number) {
  const { db } = await services();
  const d = await getDelivery(db, id);
  if (!d) return null;
  const pii = canSeePii(who.operator.role);
  const [context, audit] = await Promise.all([deliveryContext(db, d), auditForTarget(db, 'webhook', String(id), 50)]);
  const { rawBody, headers, dedupeKey: _k, ...rest } = d;
  return {
    delivery: rest,
    body: displayBody(rawBody, pii),
    headers: maskHeaders(headers, pii),
    context,
    audit: audit.map((a) => ({ id: a.id, at: a.at, actor: a.actor, action: a.action, outcome: a.outcome, detail: a.detail })),
    reprocess: reprocessEligibility(d.signatureVerdict, d.status),
    canReprocess: roleAtLeast(who.operator.role, 'admin'),
  };
}

export function reprocessEligibility(verdict: SignatureVerdict, status: WebhookStatus): { ok: boolean; reason?: string } {
  if (verdict !== 'valid') return { ok: false, reason: 'Its signature did not verify, so it is not trusted and cannot be processed.' };
  if (status === 'rejected') return { ok: false, reason: 'It was rejected at intake (not a usable event), so there is nothing to process.' };
  if (status === 'received') return { ok: false, reason: 'It is already waiting for the worker.' };
  return { ok: true };
}

const ReprocessSchema = z.object({ intent: z.literal('reprocess'), requestId: RequestIdSchema });

/**
 * Re-process one stored delivery through the normal worker path: reset it to `received`, free its
 * deterministic job id and queue process-webhook again. Idempotent: the same form twice (same
 * request id) queues once; a delivery already waiting is left alone; the state machine turns a
 * repeated event into a no-op.
 */
export async function reprocessDelivery(request: Request, who: SignedIn, id: number, form: FormData): Promise<ActionResult> {
  const { db, queues } = await services();
  const parsed = ReprocessSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { tone: 'error', message: 'This form is incomplete; reload the page and try again.' };
  const audit = (outcome: 'queued' | 'denied' | 'error', detail: Record<string, unknown>) =>
    auditAction(request, who, { action: 'webhook.reprocess', targetType: 'webhook', targetId: String(id), outcome, detail });

  const d = await getDelivery(db, id);
  if (!d) return { tone: 'error', message: `There is no delivery #${id}.` };
  const eligible = reprocessEligibility(d.signatureVerdict, d.status);
  if (!eligible.ok) {
    await audit('denied', { reason: eligible.reason });
    return { tone: d.status === 'received' ? 'info' : 'error', message: `Delivery #${id} was not re-processed: ${eligible.reason}` };
  }

  const key = `webhook-reprocess:${parsed.data.requestId}`;
  const c = await claim(db, key, 'webhook-reprocess');
  if (!c.fresh) return { tone: 'info', message: `This re-process request for delivery #${id} was already submitted; nothing more was queued.` };

  // BullMQ ignores an add whose job id already exists, and process-webhook's id is deterministic
  // (wh-<id>): the finished job from the first run must go first. Doing this before touching the
  // row means a Redis outage leaves the delivery exactly as it was.
  const q = queues.queue(processWebhook.queue);
  try {
    const old = await withTimeout(q.getJob(`wh-${id}`), 2000, 'Redis');
    if (old) {
      const st = await withTimeout(old.getState(), 2000, 'Redis');
      if (st === 'active' || st === 'waiting' || st === 'delayed' || st === 'prioritized') {
        await forget(db, key);
        await audit('denied', { reason: `job is ${st}` });
        return { tone: 'info', message: `Delivery #${id} is being processed right now (job ${st}); look again in a moment.` };
      }
      await withTimeout(old.remove(), 2000, 'Redis');
    }
  } catch (err) {
    await forget(db, key);
    await audit('error', { reason: (err as Error).message });
    return { tone: 'error', message: `The job queue (Redis) is not answering, so nothing was changed. Try again when Queues shows Redis healthy. (${(err as Error).message})` };
  }

  const reset = await resetForReprocess(db, id);
  if (!reset) {
    await settle(db, key, 'done', { reset: false });
    await audit('denied', { reason: 'already reset by someone else' });
    return { tone: 'info', message: `Delivery #${id} is already waiting for the worker.` };
  }
  let queuedLater = false;
  try {
    await queues.add(processWebhook, { inboxId: id });
    await markEnqueued(db, [id]);
  } catch {
    // Stored as `received` with no enqueue time: the inbox relay queues it when Redis is back.
    queuedLater = true;
  }
  await settle(db, key, 'done', { reset: true, queuedLater });
  await audit('queued', { previousStatus: d.status, previousEffect: d.effect, queuedLater });
  return queuedLater
    ? { tone: 'info', message: `Delivery #${id} will be re-processed: Redis did not take the job just now, so the relay will queue it within seconds.` }
    : { tone: 'ok', message: `Delivery #${id} was queued for re-processing. This page shows the outcome when the worker is done.` };
}

// ================================================================== queues

/** A failed job's reason in words an operator can act on (the raw text stays for admins). */
export function plainJobError(reason: string | undefined | null): string {
  const r = (reason ?? '').trim();
  if (!r) return 'It failed without giving a reason.';
  const capa = /^Capa (\w+) failed \((?:HTTP (\d{3})|(timeout|network)) ([A-Z0-9_]+)\): ([\s\S]*)$/.exec(r);
  if (capa) {
    const [, op, status, kind, code, msg] = capa;
    const err = new CapaError({
      status: status ? Number(status) : null, code: code!, capaMessage: msg!, op: op!,
      kind: status ? 'http' : (kind as 'timeout' | 'network'), retryable: false,
    });
    const words = describeCapaError(err);
    // "will be retried" is not true any more for a job that has failed for good.
    return words.replace(/; the request will be retried\.$/, '.').replace(/; retrying (after \d+ s|shortly)\.$/, '.');
  }
  if (/^invalid payload for/.test(r)) return 'The job’s data was invalid (an old or broken job); retrying will not help — tell the on-call engineer.';
  if (/^no handler for job/.test(r)) return 'No worker knows this kind of job (a version mismatch between web and worker).';
  if (/stalled more than allowable limit/i.test(r)) return 'The worker stopped while running this job (crash or restart) too many times.';
  if (/SQLITE_BUSY|database is locked/i.test(r)) return 'The database was busy; a retry usually works.';
  if (/ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN/.test(r)) return 'A service did not answer (connection refused or timed out); a retry usually works once it is back.';
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
      queue, id: String(j.id), name: j.name, failedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
      attempts: j.attemptsMade, plain: plainJobError(j.failedReason), raw: admin ? (j.failedReason ?? null) : null,
      userId, externalUserId: null, inboxId,
    };
  });
  // Webhook jobs carry an inbox id, not a user: the customer comes from the delivery.
  const inboxIds = views.map((v) => v.inboxId).filter((x): x is number => x !== null);
  if (inboxIds.length) {
    const rows = await db
      .selectFrom('webhookInbox as w')
      .leftJoin('users as u', 'u.externalUserId', 'w.externalUserId')
      .select(['w.id', 'w.externalUserId', (eb) => eb.fn.coalesce('w.userId', 'u.id').as('userId')])
      .where('w.id', 'in', inboxIds)
      .execute();
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
    if (j.name === sendNotification.name && typeof j.data?.notificationId === 'string') messageOf.set(views[i]!, j.data.notificationId as string);
  });
  if (messageOf.size) {
    const rows = await db.selectFrom('notifications').select(['id', 'userId']).where('id', 'in', [...new Set(messageOf.values())]).execute();
    const byId = new Map(rows.map((r) => [r.id, r.userId]));
    for (const [v, messageId] of messageOf) v.userId ??= byId.get(messageId) ?? null;
  }
  const userIds = [...new Set(views.filter((v) => v.userId && !v.externalUserId).map((v) => v.userId!))];
  if (userIds.length) {
    const rows = await db.selectFrom('users').select(['id', 'externalUserId']).where('id', 'in', userIds).execute();
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
    health, redisError, failed, failedKinds, noWorker,
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
        await auditAction(request, who, { action: 'queues.retry', targetType: 'job', targetId: target, outcome: 'error', detail: { reason: 'job not found' } });
        return { tone: 'error', message: `Job ${a.jobId} no longer exists (failed jobs are kept 7 days, or someone removed it).` };
      }
      const st = await job.getState();
      if (st !== 'failed') {
        await auditAction(request, who, { action: 'queues.retry', targetType: 'job', targetId: target, outcome: 'denied', detail: { reason: `state ${st}` } });
        return { tone: 'info', message: `Job ${a.jobId} is not failed any more (it is ${st}); nothing to retry.` };
      }
      // A fresh set of attempts: the job's own backoff applies again instead of one last try.
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      await auditAction(request, who, { action: 'queues.retry', targetType: 'job', targetId: target, outcome: 'queued', detail: { name: job.name } });
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
    await auditAction(request, who, { action: 'queues.retry-all', targetType: 'queue', targetId: a.queue, outcome: moved > 0 ? 'queued' : 'ok', detail: { name: a.name, moved, seen } });
    if (moved === 0) return { tone: 'info', message: `No failed ${a.name} jobs to retry in ${a.queue}.` };
    return { tone: 'ok', message: `${moved} failed ${a.name} job${moved === 1 ? '' : 's'} queued again${moved >= RETRY_ALL_LIMIT ? ` (the first ${RETRY_ALL_LIMIT}; click again for more)` : ''}.` };
  } catch (err) {
    await auditAction(request, who, { action: a.intent === 'retry-one' ? 'queues.retry' : 'queues.retry-all', targetType: 'queue', targetId: a.queue, outcome: 'error', detail: { reason: (err as Error).message } });
    return { tone: 'error', message: `The job queue (Redis) did not answer, so nothing was retried. (${(err as Error).message})` };
  }
}

// ================================================================== Capa delivery log

/** Capa's documented limits on manual retries (capa-api.md §2.7). */
export const CAPA_RETRY_LIMITS = { perNotification: 3, perMinute: 10 } as const;
const CAPA_RETRY_ACTION = 'capa.delivery.retry';

let capaCache: { key: string; client: CapaClient } | undefined;

/**
 * The web process's Capa client: no automatic retries (an operator is waiting, and a retried POST
 * could spend Capa's manual-retry allowance twice); its calls are counted in /metrics.
 */
export async function opsCapa(): Promise<CapaClient> {
  const { env } = await services();
  const key = `${env.capaBaseUrl}|${env.CAPA_API_KEY}|${env.CAPA_TIMEOUT_MS}`;
  if (capaCache?.key !== key) {
    const stats = await webCapaStats();
    capaCache = { key, client: new CapaClient({ baseUrl: env.capaBaseUrl, apiKey: env.CAPA_API_KEY, timeoutMs: Math.min(env.CAPA_TIMEOUT_MS, 8000), maxRetries: 0, onCall: stats.record }) };
  }
  return capaCache.client;
}

export interface RetryBudget {
  limit: number;
  /** Retries sent to Capa in the last minute (from the audit log: every web process counts). */
  used: number;
  /** Until when Capa's per-minute limit is known to be used up (ISO), if it is. */
  blockedUntil: string | null;
}

/** Our side of Capa's 10-per-minute limit, from the audit log so every web process agrees. */
export async function capaRetryBudget(now = Date.now()): Promise<RetryBudget> {
  const { db } = await services();
  const rows = await db
    .selectFrom('auditLog')
    .select(['at', 'outcome', 'detail'])
    .where('action', '=', CAPA_RETRY_ACTION)
    .where('at', '>=', isoAgo(60_000, now))
    .orderBy('id', 'asc')
    .execute();
  let used = 0;
  let blockedUntil: number | null = null;
  for (const r of rows) {
    let detail: { sent?: boolean; blockedUntil?: string } = {};
    try {
      detail = r.detail ? JSON.parse(r.detail) : {};
    } catch { /* old row */ }
    if (detail.sent) used++;
    if (detail.blockedUntil) blockedUntil = Math.max(blockedUntil ?? 0, Date.parse(detail.blockedUntil));
  }
  // Capa counts every call in a sliding minute; when we have sent the limit, we are blocked until
  // the oldest of them is a minute old.
  if (used >= CAPA_RETRY_LIMITS.perMinute) {
    const sent = rows.filter((r) => r.detail && /"sent":true/.test(r.detail));
    const oldest = Date.parse(sent[sent.length - CAPA_RETRY_LIMITS.perMinute]!.at);
    blockedUntil = Math.max(blockedUntil ?? 0, oldest + 60_000);
  }
  return { limit: CAPA_RETRY_LIMITS.perMinute, used, blockedUntil: blockedUntil && blockedUntil > now ? new Date(blockedUntil).toISOString() : null };
}

export function retryBlockReason(n: Pick<WebhookNotificationListItem, 'status' | 'manualRetryCount'>, budget: RetryBudget): string | null {
  if (n.status !== 'FAILED') return `Only FAILED deliveries can be retried (this one is ${n.status}).`;
  if (n.manualRetryCount >= CAPA_RETRY_LIMITS.perNotification) return `Capa allows ${CAPA_RETRY_LIMITS.perNotification} manual retries per delivery; all have been used.`;
  if (budget.blockedUntil) return `Capa allows ${CAPA_RETRY_LIMITS.perMinute} manual retries per minute; wait until ${budget.blockedUntil.slice(11, 19)} UTC.`;
  return null;
}

/** Capa's refusals of a manual retry, in plain words. */
export function describeRetryError(err: unknown): string {
  if (err instanceof CapaError && err.kind === 'http') {
    if (err.status === 409 && /maximum number of manual retries/i.test(err.capaMessage)) {
      return `Capa refused: this delivery has already been retried manually ${CAPA_RETRY_LIMITS.perNotification} times, the most Capa allows. Use Get KYC Details on the customer instead.`;
    }
    if (err.status === 409) return 'Capa refused: this delivery is no longer FAILED (it may have been retried already or delivered meanwhile). Reload to see its current status.';
    if (err.status === 429) {
      const s = err.retryAfterMs !== undefined ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : 60;
      return `Capa refused: its limit of ${CAPA_RETRY_LIMITS.perMinute} manual retries per minute is used up. Try again in ${s} s.`;
    }
    if (err.status === 404) return 'Capa has no delivery with this id (or this Capa environment has no delivery log).';
  }
  return describeCapaError(err);
}

const CapaListParamsSchema = z.object({
  status: z.enum(WEBHOOK_NOTIFICATION_STATUSES).optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(100_000).catch(1),
  size: z.coerce.number().int().refine((n) => [20, 50, 100].includes(n)).catch(20),
});

export async function capaDeliveriesData(who: SignedIn, sp: URLSearchParams) {
  const p = CapaListParamsSchema.parse({ status: sp.get('status') || undefined, page: sp.get('page') ?? 1, size: sp.get('size') ?? 20 });
  const budget = await capaRetryBudget();
  const canRetry = roleAtLeast(who.operator.role, 'admin');
  try {
    const capa = await opsCapa();
    const list = await capa.listWebhookNotifications({ status: p.status, skip: (p.page - 1) * p.size, limit: p.size });
    const rows = list.data.map((n) => ({ ...n, blocked: retryBlockReason(n, budget) }));
    return { ok: true as const, rows, total: list.total, page: p.page, pageSize: p.size, pageCount: Math.max(1, Math.ceil(list.total / p.size)), status: p.status ?? null, budget, canRetry, limits: CAPA_RETRY_LIMITS };
  } catch (err) {
    return { ok: false as const, error: describeCapaError(err), rows: [], total: 0, page: p.page, pageSize: p.size, pageCount: 1, status: p.status ?? null, budget, canRetry, limits: CAPA_RETRY_LIMITS };
  }
}

export async function capaDeliveryDetail(who: SignedIn, id: string) {
  const { db } = await services();
  const pii = canSeePii(who.operator.role);
  const budget = await capaRetryBudget();
  let n: WebhookNotificationDetail;
  try {
    n = await (await opsCapa()).getWebhookNotification(id);
  } catch (err) {
    if (err instanceof CapaError && err.status === 404) return { found: false as const, error: describeRetryError(err) };
    return { found: false as const, error: describeCapaError(err) };
  }
  const payload = n.payload ?? null;
  const ext = payload && typeof payload.externalUserId === 'string' ? payload.externalUserId : null;
  // What this delivery became on our side: inbox rows for the same customer and event.
  const ours = ext && payload?.event
    ? await db
        .selectFrom('webhookInbox')
        .select(['id', 'receivedAt', 'status', 'signatureVerdict', 'duplicateOf', 'stateFrom', 'stateTo', 'effect'])
        .where('externalUserId', '=', ext)
        .where('eventName', '=', payload.event)
        .orderBy('id', 'desc')
        .limit(20)
        .execute()
    : [];
  const customer = ext ? await db.selectFrom('users').select(['id', 'externalUserId']).where('externalUserId', '=', ext).executeTakeFirst() : undefined;
  return {
    found: true as const,
    notification: {
      ...n,
      payload: pii ? payload : (maskDeep(payload) as typeof payload),
      latestErrorPayload: pii ? n.latestErrorPayload : maskDeep(n.latestErrorPayload),
    },
    blocked: retryBlockReason(n, budget),
    budget,
    limits: CAPA_RETRY_LIMITS,
    ours,
    customer: customer ?? null,
    canRetry: roleAtLeast(who.operator.role, 'admin'),
  };
}

const CapaRetrySchema = z.object({ intent: z.literal('retry'), id: z.string().trim().min(1).max(100), requestId: RequestIdSchema });

/** Ask Capa to send a FAILED delivery again (its manual retry), within Capa's limits. */
export async function retryCapaDelivery(request: Request, who: SignedIn, form: FormData): Promise<ActionResult> {
  const { db } = await services();
  const parsed = CapaRetrySchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { tone: 'error', message: 'This form is incomplete; reload the page and try again.' };
  const { id, requestId } = parsed.data;
  const audit = (outcome: 'ok' | 'error' | 'denied', detail: Record<string, unknown>) =>
    auditAction(request, who, { action: CAPA_RETRY_ACTION, targetType: 'capa-notification', targetId: id, outcome, detail });

  const key = `capa-retry:${requestId}`;
  const c = await claim(db, key, 'capa-retry');
  if (!c.fresh) {
    const prior = c.result as ActionResult | null;
    return prior ?? { tone: 'info', message: 'This retry was already submitted.' };
  }
  const budget = await capaRetryBudget();
  if (budget.blockedUntil) {
    const r: ActionResult = { tone: 'error', message: `Not sent: Capa allows ${CAPA_RETRY_LIMITS.perMinute} manual retries per minute and they are used up until ${budget.blockedUntil.slice(11, 19)} UTC.` };
    await audit('denied', { sent: false, reason: 'per-minute limit reached (ours)' });
    await settle(db, key, 'done', r);
    return r;
  }
  let result: ActionResult;
  try {
    const n = await (await opsCapa()).retryWebhookNotification(id);
    result = { tone: 'ok', message: `Capa is sending delivery ${id} again${typeof n?.manualRetryCount === 'number' ? ` (manual retry ${n.manualRetryCount} of ${CAPA_RETRY_LIMITS.perNotification})` : ''}.` };
    await audit('ok', { sent: true });
  } catch (err) {
    const capaErr = err instanceof CapaError ? err : null;
    const reachedCapa = capaErr?.kind === 'http';
    const blockedUntil = capaErr?.status === 429 ? new Date(Date.now() + (capaErr.retryAfterMs ?? 60_000)).toISOString() : undefined;
    result = { tone: 'error', message: describeRetryError(err) };
    await audit('error', { sent: reachedCapa, status: capaErr?.status ?? null, code: capaErr?.code ?? null, ...(blockedUntil ? { blockedUntil } : {}) });
  }
  await settle(db, key, 'done', result);
  return result;
}

// ================================================================== settings

const SECRET_DOT = '•';

/** A secret as shown: never more than its first and last two characters, plus a fingerprint. */
export function maskSecret(s: string): { masked: string; fingerprint: string; length: number } {
  const masked = s.length >= 16 ? `${s.slice(0, 2)}${SECRET_DOT.repeat(8)}${s.slice(-2)}` : SECRET_DOT.repeat(10);
  return { masked, fingerprint: createHash('sha256').update(s).digest('hex').slice(0, 12), length: s.length };
}

export async function settingsData(_who: SignedIn) {
  const { db, env } = await services();
  const current = await getSetting<CapaWebhookSetting>(db, SETTING_KEYS.capaWebhook);
  // Which secret verified recent deliveries: tells whether a rotation is finished.
  const since = isoAgo(30 * 86_400_000);
  const usage = await db
    .selectFrom('webhookInbox')
    .select(['secretIndex', (eb) => eb.fn.max('receivedAt').as('lastAt'), (eb) => eb.fn.countAll<number>().as('n')])
    .where('receivedAt', '>=', since)
    .where('secretIndex', 'is not', null)
    .groupBy('secretIndex')
    .execute();
  const byIndex = new Map(usage.map((u) => [Number(u.secretIndex), { lastAt: u.lastAt as string | null, count: Number(u.n) }]));
  return {
    current: current?.value ?? null,
    suggestedUrl: `${env.publicUrl}/webhooks/capa`,
    capaBaseUrl: env.capaBaseUrl,
    usingSandbox: env.usingSandbox,
    secrets: env.CAPA_WEBHOOK_SECRET.map((s, i) => ({ index: i, ...maskSecret(s), lastVerifiedAt: byIndex.get(i)?.lastAt ?? null, verified30d: byIndex.get(i)?.count ?? 0 })),
    production: env.NODE_ENV === 'production',
  };
}

export const WebhookSettingsSchema = z.discriminatedUnion('intent', [
  z.object({
    intent: z.literal('set-url'),
    url: z
      .string({ required_error: 'Enter the URL Capa should send webhooks to.' })
      .trim()
      .min(1, 'Enter the URL Capa should send webhooks to.')
      .max(2000, 'At most 2000 characters.')
      .url('Enter a full URL, e.g. https://kyc.example.com/webhooks/capa.')
      .refine((u) => /^https?:\/\//i.test(u), 'The URL must start with https:// (or http:// for local testing).'),
  }),
  z.object({ intent: z.literal('disable'), confirm: z.literal('yes', { errorMap: () => ({ message: 'Tick the box to confirm that Capa should stop sending webhooks.' }) }) }),
]);

export type SettingsOutcome = ActionResult & { errors?: Record<string, string>; values?: Record<string, string> };

/** Registers the webhook URL at Capa; stores it only once Capa has accepted it. */
export async function saveWebhookSettings(request: Request, who: SignedIn, form: FormData): Promise<SettingsOutcome> {
  const { db, env } = await services();
  const values = Object.fromEntries([...form.entries()].filter(([k, v]) => k !== 'csrf' && typeof v === 'string')) as Record<string, string>;
  const parsed = WebhookSettingsSchema.safeParse(values);
  if (!parsed.success) {
    const errors: Record<string, string> = {};
    for (const i of parsed.error.issues) errors[String(i.path[0] ?? 'form')] ??= i.message;
    return { tone: 'error', message: 'Nothing was sent to Capa: check the form.', errors, values };
  }
  const url = parsed.data.intent === 'set-url' ? parsed.data.url : null;
  if (url && env.NODE_ENV === 'production' && !/^https:\/\//i.test(url)) {
    return { tone: 'error', message: 'Nothing was sent to Capa: check the form.', errors: { url: 'In production the URL must use https://.' }, values };
  }
  try {
    const s = await (await opsCapa()).setWebhookSettings(url);
    const setting: CapaWebhookSetting = { url: s.url ?? url, capaId: s.id, capaUpdatedAt: s.updatedAt ?? null, setAt: nowIso(), setBy: who.operator.email };
    await putSetting(db, SETTING_KEYS.capaWebhook, setting, who.operator.id);
    await auditAction(request, who, { action: 'settings.capa-webhook', targetType: 'setting', targetId: SETTING_KEYS.capaWebhook, outcome: 'ok', detail: { url: setting.url } });
    return url
      ? { tone: 'ok', message: `Capa will now send webhooks to ${setting.url}.` }
      : { tone: 'ok', message: 'Capa webhooks are switched off: events are recorded at Capa as NOT_SENT until a URL is set again.' };
  } catch (err) {
    await auditAction(request, who, { action: 'settings.capa-webhook', targetType: 'setting', targetId: SETTING_KEYS.capaWebhook, outcome: 'error', detail: { url, error: err instanceof CapaError ? `${err.status ?? err.kind} ${err.code}` : String(err) } });
    return { tone: 'error', message: `Capa did not accept the change, so nothing was saved: ${describeCapaError(err)}`, values };
  }
}

export const NOTIFICATION_STATUS_WORDS: Record<WebhookNotificationStatus, string> = {
  PENDING: 'queued or being retried by Capa',
  SENT: 'delivered (we answered 2xx)',
  FAILED: 'Capa gave up after its automatic retries',
  NOT_SENT: 'no webhook URL was set when it happened',
};
