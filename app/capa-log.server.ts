import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { z } from 'zod';
import { CapaError } from '../capa/client.js';
import { WEBHOOK_NOTIFICATION_STATUSES, type WebhookNotificationDetail, type WebhookNotificationListItem } from '../capa/types.js';
import { auditByActionSince } from '../db/repositories/audit.js';
import { claim, settle } from '../db/repositories/idempotency.js';
import { deliveriesForEvent } from '../db/repositories/inbox.js';
import { customerRefByExternalId } from '../db/repositories/users.js';
import { isoAgo } from '../lib/time.js';
import { RequestIdSchema, type ActionResult, type Message } from './action-result';
import { auditAction, canSeePii, roleAtLeast, type SignedIn } from './auth.server';
import { opsCapa } from './capa-client.server';
import { pageCount, parsePaging } from './list-params.server';
import { maskDeep } from './pii';
import { capaErrorMessage } from './plain-errors.server';
import { services } from './services.server';

/**
 * Capa's delivery log (/capa/deliveries, /capa/deliveries/:id): what Capa says it sent us, what
 * each delivery became on our side, and Capa's manual retry within its limits.
 */

/** Capa's documented limits on manual retries (capa-api.md §2.7). */
export const CAPA_RETRY_LIMITS = { perNotification: 3, perMinute: 10 } as const;
const CAPA_RETRY_ACTION = AUDIT_ACTIONS.capaDeliveryRetry;

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
  const rows = await auditByActionSince(db, CAPA_RETRY_ACTION, isoAgo(60_000, now));
  let used = 0;
  let blockedUntil: number | null = null;
  for (const r of rows) {
    let detail: { sent?: boolean; blockedUntil?: string } = {};
    try {
      detail = r.detail ? JSON.parse(r.detail) : {};
    } catch {
      /* old row */
    }
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
  return {
    limit: CAPA_RETRY_LIMITS.perMinute,
    used,
    blockedUntil: blockedUntil && blockedUntil > now ? new Date(blockedUntil).toISOString() : null,
  };
}

const msg = (key: string, values?: Message['values']): Message => ({ code: `capa-log:${key}`, ...(values ? { values } : {}) });

/** Why a delivery cannot be retried now (null: it can). `untilAt` is a moment the page shows in the reader's time zone. */
export function retryBlockReason(n: Pick<WebhookNotificationListItem, 'status' | 'manualRetryCount'>, budget: RetryBudget): Message | null {
  if (n.status !== 'FAILED') return msg('blocked.not_failed', { status: n.status });
  if (n.manualRetryCount >= CAPA_RETRY_LIMITS.perNotification) return msg('blocked.all_used', { limit: CAPA_RETRY_LIMITS.perNotification });
  if (budget.blockedUntil) return msg('blocked.per_minute', { limit: CAPA_RETRY_LIMITS.perMinute, untilAt: budget.blockedUntil });
  return null;
}

/** Capa's refusals of a manual retry, in plain words. */
export function describeRetryError(err: unknown): Message {
  if (err instanceof CapaError && err.kind === 'http') {
    if (err.status === 409 && /maximum number of manual retries/i.test(err.capaMessage)) {
      return msg('refused.max_retries', { limit: CAPA_RETRY_LIMITS.perNotification });
    }
    if (err.status === 409) return msg('refused.not_failed');
    if (err.status === 429) {
      const seconds = err.retryAfterMs !== undefined ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : 60;
      return msg('refused.per_minute', { limit: CAPA_RETRY_LIMITS.perMinute, seconds });
    }
    if (err.status === 404) return msg('refused.no_delivery');
  }
  return capaErrorMessage(err);
}

const StatusParamSchema = z.enum(WEBHOOK_NOTIFICATION_STATUSES).optional().catch(undefined);

export async function capaDeliveriesData(who: SignedIn, sp: URLSearchParams) {
  const { page, pageSize: size } = parsePaging(sp, { sizes: [20, 50, 100], defaultSize: 20, maxPage: 100_000 });
  const p = { status: StatusParamSchema.parse(sp.get('status') || undefined), page, size };
  const budget = await capaRetryBudget();
  const canRetry = roleAtLeast(who.operator.role, 'admin');
  try {
    const capa = await opsCapa();
    const list = await capa.listWebhookNotifications({ status: p.status, skip: (p.page - 1) * p.size, limit: p.size });
    const rows = list.data.map((n) => ({ ...n, blocked: retryBlockReason(n, budget) }));
    return {
      ok: true as const,
      rows,
      total: list.total,
      page: p.page,
      pageSize: p.size,
      pageCount: pageCount(list.total, p.size),
      status: p.status ?? null,
      budget,
      canRetry,
      limits: CAPA_RETRY_LIMITS,
    };
  } catch (err) {
    return {
      ok: false as const,
      error: capaErrorMessage(err),
      rows: [],
      total: 0,
      page: p.page,
      pageSize: p.size,
      pageCount: 1,
      status: p.status ?? null,
      budget,
      canRetry,
      limits: CAPA_RETRY_LIMITS,
    };
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
    return { found: false as const, error: capaErrorMessage(err) };
  }
  const payload = n.payload ?? null;
  const ext = payload && typeof payload.externalUserId === 'string' ? payload.externalUserId : null;
  // What this delivery became on our side: inbox rows for the same customer and event.
  const ours = ext && payload?.event ? await deliveriesForEvent(db, ext, payload.event, 20) : [];
  const customer = ext ? await customerRefByExternalId(db, ext) : undefined;
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
  if (!parsed.success) return { tone: 'error', ...msg('retry.form_incomplete') };
  const { id, requestId } = parsed.data;
  const audit = (outcome: 'ok' | 'error' | 'denied', detail: Record<string, unknown>) =>
    auditAction(request, who, { action: CAPA_RETRY_ACTION, targetType: 'capa-notification', targetId: id, outcome, detail });

  const key = `capa-retry:${requestId}`;
  const c = await claim(db, key, 'capa-retry');
  if (!c.fresh) {
    const prior = c.result as ActionResult | null;
    return prior && 'code' in prior ? prior : { tone: 'info', ...msg('retry.already_submitted') };
  }
  const budget = await capaRetryBudget();
  if (budget.blockedUntil) {
    const r: ActionResult = { tone: 'error', ...msg('retry.held', { limit: CAPA_RETRY_LIMITS.perMinute, untilAt: budget.blockedUntil }) };
    await audit('denied', { sent: false, reason: 'per-minute limit reached (ours)' });
    await settle(db, key, 'done', r);
    return r;
  }
  let result: ActionResult;
  try {
    const n = await (await opsCapa()).retryWebhookNotification(id);
    result = {
      tone: 'ok',
      ...(typeof n?.manualRetryCount === 'number'
        ? msg('retry.sent_count', { id, count: n.manualRetryCount, limit: CAPA_RETRY_LIMITS.perNotification })
        : msg('retry.sent', { id })),
    };
    await audit('ok', { sent: true });
  } catch (err) {
    const capaErr = err instanceof CapaError ? err : null;
    const reachedCapa = capaErr?.kind === 'http';
    const blockedUntil = capaErr?.status === 429 ? new Date(Date.now() + (capaErr.retryAfterMs ?? 60_000)).toISOString() : undefined;
    result = { tone: 'error', ...describeRetryError(err) };
    await audit('error', {
      sent: reachedCapa,
      status: capaErr?.status ?? null,
      code: capaErr?.code ?? null,
      ...(blockedUntil ? { blockedUntil } : {}),
    });
  }
  await settle(db, key, 'done', result);
  return result;
}
