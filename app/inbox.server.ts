import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { z } from 'zod';
import { auditForTarget } from '../db/repositories/audit.js';
import { claim, forget, settle } from '../db/repositories/idempotency.js';
import { getDelivery, markEnqueued, resetForReprocess } from '../db/repositories/inbox.js';
import {
  deliveryContext,
  inboxEventNames,
  INBOX_SORTABLE,
  INBOX_STATUSES,
  listInbox,
  VERDICTS,
  type InboxQuery,
  type InboxSort,
} from '../db/repositories/inbox-query.js';
import type { SignatureVerdict, WebhookStatus } from '../db/schema.js';
import { processWebhook } from '../jobs/definitions/process-webhook.js';
import { withTimeout } from '../lib/time.js';
import { RequestIdSchema, type ActionResult } from './action-result';
import { auditAction, canSeePii, roleAtLeast, type SignedIn } from './auth.server';
import { dayEnd, dayStart, isoDay, parsePaging, parseSorting } from './list-params.server';
import { maskDeep } from './pii';
import { storedErrorMessage } from './plain-errors.server';
import { services } from './services.server';

/**
 * The webhook inbox (/webhooks, /webhooks/:id): every delivery Capa sent us as stored, what it
 * did, and re-processing one through the worker.
 */

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
  const verdict = sp.get('verdict');
  const status = sp.get('status');
  const dup = sp.get('dup');
  const from = sp.get('from') ?? '';
  const to = sp.get('to') ?? '';
  return {
    customer: sp.get('customer')?.trim().slice(0, 200) || null,
    event: sp.get('event')?.trim().slice(0, 64) || null,
    verdict: (VERDICTS as readonly string[]).includes(verdict ?? '') ? (verdict as SignatureVerdict) : null,
    status: (INBOX_STATUSES as readonly string[]).includes(status ?? '') ? (status as WebhookStatus) : null,
    duplicate: dup === 'duplicate' || dup === 'new' ? dup : null,
    changedOnly: sp.get('changed') === '1',
    errorsOnly: sp.get('errors') === '1',
    receivedFrom: dayStart(from),
    receivedTo: dayEnd(to),
    from: isoDay(from) ?? '',
    to: isoDay(to) ?? '',
    ...parseSorting(sp, INBOX_SORTABLE, 'id'),
    ...parsePaging(sp, { sizes: [25, 50, 100, 200], defaultSize: 50 }),
  };
}

export async function inboxListData(who: SignedIn, sp: URLSearchParams) {
  const { db } = await services();
  const params = parseInboxParams(sp);
  const [page, events] = await Promise.all([listInbox(db, params), inboxEventNames(db)]);
  return {
    ...page,
    rows: page.rows.map((r) => ({ ...r, errorMessage: r.error ? storedErrorMessage(r.error) : null })),
    params,
    events,
    verdicts: VERDICTS,
    statuses: INBOX_STATUSES,
    canReprocess: roleAtLeast(who.operator.role, 'admin'),
  };
}

/** The stored headers; for viewers, the ones that carry personal data are named in `hidden` and left out. */
function maskHeaders(headersJson: string, pii: boolean): { headers: Record<string, string>; hidden: string[] } {
  let h: Record<string, string> = {};
  try {
    h = JSON.parse(headersJson) as Record<string, string>;
  } catch {
    return { headers: {}, hidden: [] };
  }
  if (pii || !h['x-forwarded-for']) return { headers: h, hidden: [] };
  const { 'x-forwarded-for': _ip, ...rest } = h;
  return { headers: rest, hidden: ['x-forwarded-for'] };
}

/**
 * The stored body as shown: pretty JSON; for viewers, personal data masked. A body that is not
 * JSON cannot be masked field by field: viewers get only its size (`text` null, `bytes`).
 */
export function displayBody(raw: string, pii: boolean): { text: string | null; bytes: number; masked: boolean; json: boolean } {
  const bytes = Buffer.byteLength(raw);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return pii ? { text: raw, bytes, masked: false, json: false } : { text: null, bytes, masked: true, json: false };
  }
  return { text: JSON.stringify(pii ? parsed : maskDeep(parsed), null, 2), bytes, masked: !pii, json: true };
}

export async function inboxDetailData(who: SignedIn, id: number) {
  const { db } = await services();
  const d = await getDelivery(db, id);
  if (!d) return null;
  const pii = canSeePii(who.operator.role);
  const [context, audit] = await Promise.all([deliveryContext(db, d), auditForTarget(db, 'webhook', String(id), 50)]);
  const { rawBody, headers, dedupeKey: _k, ...rest } = d;
  const shown = maskHeaders(headers, pii);
  return {
    delivery: { ...rest, errorMessage: rest.error ? storedErrorMessage(rest.error) : null },
    body: displayBody(rawBody, pii),
    headers: shown.headers,
    hiddenHeaders: shown.hidden,
    context: {
      ...context,
      jobRuns: context.jobRuns.map((j) => ({
        ...j,
        errorMessage: j.error ? storedErrorMessage(j.error, { final: j.status === 'failed' }) : null,
      })),
    },
    audit: audit.map((a) => ({ id: a.id, at: a.at, actor: a.actor, action: a.action, outcome: a.outcome, detail: a.detail })),
    reprocessRefusal: reprocessRefusal(d.signatureVerdict, d.status),
    canReprocess: roleAtLeast(who.operator.role, 'admin'),
  };
}

/** Why a delivery cannot be re-processed, as a message code; null when it can. */
export function reprocessRefusal(
  verdict: SignatureVerdict,
  status: WebhookStatus,
): 'untrusted' | 'rejected_at_intake' | 'already_waiting' | null {
  if (verdict !== 'valid') return 'untrusted';
  if (status === 'rejected') return 'rejected_at_intake';
  if (status === 'received') return 'already_waiting';
  return null;
}

const ReprocessSchema = z.object({ intent: z.literal('reprocess'), requestId: RequestIdSchema });

const say = (tone: ActionResult['tone'], key: string, values?: ActionResult['values']): ActionResult => ({
  tone,
  code: `inbox:reprocess.${key}`,
  ...(values ? { values } : {}),
});

/**
 * Re-process one stored delivery through the normal worker path: reset it to `received`, free its
 * deterministic job id and queue process-webhook again. Idempotent: the same form twice (same
 * request id) queues once; a delivery already waiting is left alone; the state machine turns a
 * repeated event into a no-op.
 */
export async function reprocessDelivery(request: Request, who: SignedIn, id: number, form: FormData): Promise<ActionResult> {
  const { db, queues } = await services();
  const parsed = ReprocessSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return say('error', 'form_incomplete');
  const audit = (outcome: 'queued' | 'denied' | 'error', detail: Record<string, unknown>) =>
    auditAction(request, who, { action: AUDIT_ACTIONS.webhookReprocess, targetType: 'webhook', targetId: String(id), outcome, detail });

  const d = await getDelivery(db, id);
  if (!d) return say('error', 'no_delivery', { id });
  const refusal = reprocessRefusal(d.signatureVerdict, d.status);
  if (refusal) {
    await audit('denied', { reason: refusal });
    return say(d.status === 'received' ? 'info' : 'error', `refused.${refusal}`, { id });
  }

  const key = `webhook-reprocess:${parsed.data.requestId}`;
  const c = await claim(db, key, 'webhook-reprocess');
  if (!c.fresh) return say('info', 'already_submitted', { id });

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
        return say('info', 'in_progress', { id, state: st });
      }
      await withTimeout(old.remove(), 2000, 'Redis');
    }
  } catch (err) {
    await forget(db, key);
    await audit('error', { reason: (err as Error).message });
    return say('error', 'redis_down', { detail: (err as Error).message });
  }

  const reset = await resetForReprocess(db, id);
  if (!reset) {
    await settle(db, key, 'done', { reset: false });
    await audit('denied', { reason: 'already reset by someone else' });
    return say('info', 'refused.already_waiting', { id });
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
  return queuedLater ? say('info', 'queued_later', { id }) : say('ok', 'queued', { id });
}
