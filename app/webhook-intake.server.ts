import { createHash } from 'node:crypto';
import { SIGNATURE_HEADER, verifySignature } from '../capa/signature.js';
import type { Db, Executor } from '../db/client.js';
import { Batcher, type Settled } from '../lib/batch.js';
import { findOriginal, insertDeliveries, insertDelivery, keysWithPossibleOriginals } from '../db/repositories/inbox.js';
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
 * Direct adds in flight per enqueuer. At most MAX_ADDS_IN_FLIGHT jobs, and none started while the
 * oldest add has been waiting longer than STUCK_ADD_MS: a Redis that is frozen (or very slow)
 * keeps its connection "ready" while every command waits for its timeout, and without a bound
 * each delivery would leave one more add (and its timer) waiting on it.
 */
const MAX_ADDS_IN_FLIGHT = 1024;
const STUCK_ADD_MS = 500;
interface AddState {
  /** Adds in flight (each may carry many jobs): when each started and how many jobs it carries. */
  inFlight: Map<number, { at: number; jobs: number }>;
  jobs: number;
  /** Stored and answered in this turn of the event loop: added together on the next. */
  next: number[];
}
const addStates = new WeakMap<object, AddState>();
let addSeq = 0;

/**
 * Stored, then answered: the enqueue never holds the answer. The deliveries answered in one turn
 * of the event loop (those one commit stored) are added in one addBulk, started without waiting
 * for it, and skipped while Redis is down, stuck, or already has too many jobs from us in
 * flight; the relay (jobs/definitions/relay-inbox.ts) queues every stored delivery that is
 * still unqueued a couple of seconds later. Not marked as enqueued here (one write per delivery
 * on the hot path): the job id is deterministic, so a relay re-add of a queued delivery is a no-op.
 */
function queueAfterAnswer(enqueue: IntakeDeps['enqueue'], inboxId: number): void {
  if (enqueue.connected === false) return;
  let st = addStates.get(enqueue);
  if (!st) addStates.set(enqueue, (st = { inFlight: new Map(), jobs: 0, next: [] }));
  if (st.jobs + st.next.length >= MAX_ADDS_IN_FLIGHT) return;
  // A Map iterates in insertion order: the first entry is the oldest add still waiting.
  const oldest = st.inFlight.values().next().value;
  if (oldest !== undefined && performance.now() - oldest.at > STUCK_ADD_MS) return;
  st.next.push(inboxId);
  if (st.next.length === 1) setImmediate(() => addTogether(enqueue, st));
}

function addTogether(enqueue: IntakeDeps['enqueue'], st: AddState): void {
  const ids = st.next;
  st.next = [];
  const seq = ++addSeq;
  st.inFlight.set(seq, { at: performance.now(), jobs: ids.length });
  st.jobs += ids.length;
  const settled = () => {
    st.inFlight.delete(seq);
    st.jobs -= ids.length;
  };
  let add: Promise<unknown>;
  try {
    add = enqueue.addBulk
      ? enqueue.addBulk(
          processWebhook,
          ids.map((inboxId) => ({ inboxId })),
        )
      : Promise.all(ids.map((inboxId) => enqueue.add(processWebhook, { inboxId })));
  } catch {
    settled();
    return;
  }
  add
    .catch(() => {
      // Redis unavailable or slow: the deliveries are stored; the relay queues them.
    })
    .finally(settled);
}

interface ToStore {
  row: NewWebhookDelivery;
  dedupe: boolean;
}
type Stored = { id: number; duplicateOf: number | null };

/**
 * Stores one delivery. Deliveries that arrive while a write is under way are stored together in
 * the next transaction — one durable commit (one fsync with SQLite synchronous=FULL) and, when
 * none of them can be a duplicate, one duplicate check and one INSERT for all of them (a fixed
 * number of round trips on PostgreSQL) — and each caller is answered only after its row is
 * committed. The duplicate check runs inside that transaction, so two copies of one delivery in a
 * batch are still told apart.
 */
const intakeBatches = new WeakMap<Db, Batcher<ToStore, Stored>>();
function storeDelivery(db: Db, row: NewWebhookDelivery, dedupe: boolean): Promise<Stored> {
  let b = intakeBatches.get(db);
  if (!b) intakeBatches.set(db, (b = new Batcher((items) => storeBatch(db, items), 256)));
  return b.run({ row, dedupe });
}

async function storeBatch(db: Db, items: ToStore[]): Promise<Array<Settled<Stored>>> {
  try {
    const stored = await db.transaction().execute((trx) => storeAll(trx, items));
    return stored.map((value) => ({ ok: true, value }));
  } catch (error) {
    if (items.length === 1) return [{ ok: false, error }];
    // A delivery the database refuses must not cost the others their acknowledgement: each alone.
    const out: Array<Settled<Stored>> = [];
    for (const item of items) {
      try {
        out.push({ ok: true, value: (await db.transaction().execute((trx) => storeAll(trx, [item])))[0]! });
      } catch (e) {
        out.push({ ok: false, error: e });
      }
    }
    return out;
  }
}

async function storeAll(trx: Executor, items: ToStore[]): Promise<Stored[]> {
  const keyed = items
    .filter((i) => i.dedupe && i.row.dedupeKey)
    .map((i) => ({ dedupeKey: i.row.dedupeKey!, receivedAt: i.row.receivedAt }));
  const maybeRepeats =
    new Set(keyed.map((k) => k.dedupeKey)).size !== keyed.length || (await keysWithPossibleOriginals(trx, keyed)).size > 0;
  if (!maybeRepeats)
    return (
      await insertDeliveries(
        trx,
        items.map((i) => i.row),
      )
    ).map((id) => ({ id, duplicateOf: null }));
  // Some delivery may repeat an earlier one: one at a time, in arrival order, as findOriginal decides.
  const out: Stored[] = [];
  for (const item of items) {
    let row = item.row;
    let duplicateOf: number | null = null;
    if (item.dedupe && row.dedupeKey) {
      duplicateOf = await findOriginal(trx, row.dedupeKey, row.receivedAt);
      if (duplicateOf !== null) row = { ...row, status: 'ignored', duplicateOf, effect: 'duplicate', processedAt: row.receivedAt };
    }
    out.push({ id: await insertDelivery(trx, row), duplicateOf });
  }
  return out;
}
