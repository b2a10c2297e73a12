import { createHash } from 'node:crypto';
import { SIGNATURE_HEADER, verifySignature } from '../capa/signature.js';
import type { Db } from '../db/client.js';
import { groupCommit } from '../db/group-commit.js';
import { findOriginal, insertDelivery } from '../db/repositories/inbox.js';
import type { NewWebhookDelivery } from '../db/schema.js';
import type { SignatureVerdict, WebhookStatus } from '../db/schema.js';
import { nowIso } from '../lib/time.js';
import { processWebhook } from '../jobs/definitions/process-webhook.js';
import type { Enqueuer } from '../jobs/types.js';
import { KYC_EVENT_NAMES } from '../domain/webhook-events.js';

export const MAX_WEBHOOK_BYTES = 256 * 1024;

export interface IntakeDeps {
  db: Db;
  /** `connected` (jobs/queues.ts Queues): false while Redis is down, so no add is even tried. */
  enqueue: Enqueuer & { readonly connected?: boolean };
  secrets: string[];
  onOutcome?: (verdict: SignatureVerdict | 'too_large', status: WebhookStatus | 'too_large', ms: number) => void;
}

export interface IntakeResult {
  status: number;
  body: { ok: boolean; id?: number; status?: WebhookStatus; error?: string; duplicateOf?: number };
}

const KEPT_HEADERS = ['content-type', 'content-length', 'user-agent', SIGNATURE_HEADER, 'x-forwarded-for'];

function pickHeaders(h: Headers): string {
  const out: Record<string, string> = {};
  for (const k of KEPT_HEADERS) {
    const v = h.get(k);
    if (v !== null) out[k] = v.slice(0, 512);
  }
  return JSON.stringify(out);
}

/**
 * Text as stored: the bytes as UTF-8. Invalid sequences and NUL characters (PostgreSQL text
 * cannot hold NUL) become U+FFFD. The signature was verified on the exact bytes first; valid
 * JSON only ever carries NUL escaped (\u0000), which is kept as written.
 */
function bodyText(raw: Buffer): string {
  return safeText(raw.toString('utf8'));
}

function safeText(s: string): string {
  return s.includes('\u0000') ? s.replace(/\u0000/g, '\uFFFD') : s;
}

/**
 * Capa webhook intake. Order matters: verify the signature over the raw bytes, store the
 * delivery (the inbox is the system of record — this works while Redis is down or frozen), then
 * answer, with an enqueue started but not awaited; the relay picks up whatever was not queued.
 */
export async function receiveWebhook(raw: Buffer, headers: Headers, deps: IntakeDeps): Promise<IntakeResult> {
  const started = performance.now();
  const done = (r: IntakeResult, verdict: SignatureVerdict, status: WebhookStatus): IntakeResult => {
    deps.onOutcome?.(verdict, status, performance.now() - started);
    return r;
  };
  const receivedAt = nowIso();
  const headerJson = pickHeaders(headers);
  const sig = verifySignature(raw, headers.get(SIGNATURE_HEADER), deps.secrets);

  if (!sig.ok) {
    const { id } = await storeDelivery(
      deps.db,
      {
        receivedAt,
        rawBody: bodyText(raw),
        headers: headerJson,
        signatureVerdict: sig.reason,
        secretIndex: null,
        eventType: null,
        eventName: null,
        externalUserId: null,
        dedupeKey: null,
        duplicateOf: null,
        status: 'rejected',
        error: `signature ${sig.reason}`,
      },
      false,
    );
    return done({ status: 401, body: { ok: false, id, error: `invalid signature (${sig.reason})` } }, sig.reason, 'rejected');
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const obj = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  if (!obj || typeof obj.type !== 'string' || typeof obj.event !== 'string') {
    const { id } = await storeDelivery(
      deps.db,
      {
        receivedAt,
        rawBody: bodyText(raw),
        headers: headerJson,
        signatureVerdict: 'valid',
        secretIndex: sig.secretIndex,
        eventType: null,
        eventName: null,
        externalUserId: null,
        dedupeKey: null,
        duplicateOf: null,
        status: 'rejected',
        error: obj ? 'payload lacks string "type" and "event"' : 'malformed JSON',
      },
      false,
    );
    return done(
      { status: 400, body: { ok: false, id, error: obj ? 'payload must have string "type" and "event"' : 'malformed JSON' } },
      'valid',
      'rejected',
    );
  }

  const type = safeText(obj.type.slice(0, 64));
  const event = safeText(obj.event.slice(0, 64));
  const externalUserId = typeof obj.externalUserId === 'string' ? safeText(obj.externalUserId.slice(0, 200)) : null;
  const isKyc = type === 'KYC' && (KYC_EVENT_NAMES as readonly string[]).includes(event);
  // No event id or timestamp exists: identical (type, event, user[, transaction]) inside Capa's
  // retry window is the same delivery again.
  const dedupeKey = createHash('sha256')
    .update(JSON.stringify([type, event, externalUserId, obj.transactionId ?? null]))
    .digest('hex');

  let status: WebhookStatus = 'received';
  let error: string | null = null;
  if (!isKyc) {
    status = 'ignored';
    error = type === 'KYC' ? `unknown KYC event ${event}` : `not a KYC event (${type})`;
  } else if (!externalUserId) {
    status = 'ignored';
    error = 'KYC event without externalUserId';
  }

  const written = await storeDelivery(
    deps.db,
    {
      receivedAt,
      rawBody: bodyText(raw),
      headers: headerJson,
      signatureVerdict: 'valid',
      secretIndex: sig.secretIndex,
      eventType: type,
      eventName: event,
      externalUserId,
      dedupeKey,
      duplicateOf: null,
      status,
      error,
      ...(status === 'ignored' ? { effect: 'ignored', processedAt: receivedAt } : {}),
    },
    status === 'received',
  );
  const id = written.id;
  const duplicateOf = written.duplicateOf;
  if (duplicateOf !== null) status = 'ignored';

  if (status === 'received') queueAfterAnswer(deps.enqueue, id);
  return done({ status: 200, body: { ok: true, id, status, ...(duplicateOf !== null ? { duplicateOf } : {}) } }, 'valid', status);
}

/**
 * Direct adds in flight per enqueuer. At most MAX_ADDS_IN_FLIGHT, and none started while the
 * oldest one has been waiting longer than STUCK_ADD_MS: a Redis that is frozen (or very slow)
 * keeps its connection "ready" while every command waits for its timeout, and without a bound
 * each delivery would leave one more add (and its timer) waiting on it.
 */
const MAX_ADDS_IN_FLIGHT = 1024;
const STUCK_ADD_MS = 500;
const inFlight = new WeakMap<object, Map<number, number>>();
let addSeq = 0;

/**
 * Stored, then answered: the enqueue never holds the answer. The add is started without waiting
 * for it, and skipped while Redis is down, stuck, or already has too many adds from us in
 * flight; the relay (jobs/definitions/relay-inbox.ts) queues every stored delivery that is
 * still unqueued a couple of seconds later. Not marked as enqueued here (one write per delivery
 * on the hot path): the job id is deterministic, so a relay re-add of a queued delivery is a no-op.
 */
function queueAfterAnswer(enqueue: IntakeDeps['enqueue'], inboxId: number): void {
  if (enqueue.connected === false) return;
  let pending = inFlight.get(enqueue);
  if (!pending) inFlight.set(enqueue, (pending = new Map()));
  if (pending.size >= MAX_ADDS_IN_FLIGHT) return;
  const now = performance.now();
  // A Map iterates in insertion order: the first entry is the oldest add still waiting.
  const oldest = pending.values().next().value;
  if (oldest !== undefined && now - oldest > STUCK_ADD_MS) return;
  const seq = ++addSeq;
  pending.set(seq, now);
  let add: Promise<unknown>;
  try {
    add = enqueue.add(processWebhook, { inboxId });
  } catch {
    pending.delete(seq);
    return;
  }
  add
    .catch(() => {
      // Redis unavailable or slow: the delivery is stored; the relay queues it.
    })
    .finally(() => pending.delete(seq));
}

/**
 * Stores one delivery through the intake's group commit (db/group-commit.ts): deliveries that
 * arrive while a write is under way share the next transaction — one durable commit (one fsync
 * with SQLite synchronous=FULL) for many — and each caller is answered only after its row is
 * committed. The duplicate check runs inside the same transaction, so two copies of one delivery
 * in a batch are still told apart.
 */
function storeDelivery(db: Db, row: NewWebhookDelivery, dedupe: boolean): Promise<{ id: number; duplicateOf: number | null }> {
  return groupCommit(db, 'intake').run(async (trx) => {
    let duplicateOf: number | null = null;
    if (dedupe && row.dedupeKey) {
      duplicateOf = await findOriginal(trx, row.dedupeKey, row.receivedAt);
      if (duplicateOf !== null) row = { ...row, status: 'ignored', duplicateOf, effect: 'duplicate', processedAt: row.receivedAt };
    }
    return { id: await insertDelivery(trx, row), duplicateOf };
  });
}
