import { randomUUID } from 'node:crypto';
import { SIGNATURE_HEADER, signBody } from '../signature';
import type { CapaWebhookEvent, WebhookNotificationDetail, WebhookNotificationListItem, WebhookNotificationStatus } from '../types';
import { shuffle, type Rng } from './rng';

/**
 * Capa's webhook delivery, reproduced (capa-api.md §4.1, §2.7):
 * - every event becomes a notification record (NOT_SENT when the partner has no URL);
 * - body = JSON.stringify(event), POST, Content-Type application/json,
 *   `capa-signature` = hex HMAC-SHA256(secret, body);
 * - success = any 2xx; anything else (3xx, 4xx, 5xx, network error, timeout) is a failure;
 * - after a failed initial attempt, retries wait [0, 60, 300, 600, 900] s × timeScale, each
 *   measured from the previous attempt (assumption: the docs do not say whether delays are
 *   cumulative, nor whether "1st retry — immediate" comes on top of the original send; we read
 *   it as initial attempt + 5 retries, matching the log example `retryAttempts: 5` on FAILED).
 */
export const RETRY_SCHEDULE_SECONDS = [0, 60, 300, 600, 900] as const;

export interface DeliveryConfig {
  /** Fraction of events never delivered; recorded FAILED so a manual retry can recover them. */
  dropRate: number;
  /** Fraction of successful deliveries sent a second time (Capa documents duplicates). */
  duplicateRate: number;
  /** Deliver each emitted batch (one user's events) in shuffled order with small random delays. */
  reorder: boolean;
  /** Hold every attempt (initial and retries) until unpaused. */
  paused: boolean;
}

export const DEFAULT_DELIVERY: DeliveryConfig = { dropRate: 0, duplicateRate: 0, reorder: false, paused: false };

export interface NotificationRecord {
  id: string;
  partnerId: string;
  status: WebhookNotificationStatus;
  eventType: string;
  payload: CapaWebhookEvent;
  /** Exactly the bytes that are signed and sent. */
  body: string;
  retryAttempts: number;
  manualRetryCount: number;
  latestErrorPayload: unknown;
  lastManualRetryAt: Date | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  epoch: number;
}

export interface DeliveryStats {
  deliveriesAttempted: number;
  deliveriesSucceeded: number;
  deliveriesFailed: number;
  deliveriesDuplicated: number;
  deliveriesDropped: number;
}

export interface DispatcherOptions {
  rng: Rng;
  timeScale: number;
  deliveryTimeoutMs: number;
  /** Read at attempt time: the partner may change URL or secret between retries. */
  target(partnerId: string): { url: string | null; secret: string };
}

type Outcome = { ok: true; status: number } | { ok: false; errorPayload: unknown };

export class WebhookDispatcher {
  readonly notifications: NotificationRecord[] = [];
  config: DeliveryConfig = { ...DEFAULT_DELIVERY };
  stats: DeliveryStats = emptyStats();

  private epoch = 0;
  private active = 0;
  private waiters: Array<() => void> = [];
  private timers = new Set<NodeJS.Timeout>();
  private held: Array<{ n: NotificationRecord; isRetry: boolean }> = [];
  /** Per user, initial attempts run one after another so events arrive in emission order. */
  private tails = new Map<string, Promise<void>>();
  private closing = new AbortController();

  constructor(private readonly opts: DispatcherOptions) {}

  /** Record and deliver one batch of events (typically one user's CREATED_KYC + outcome). */
  emit(partnerId: string, events: CapaWebhookEvent[]): NotificationRecord[] {
    const now = new Date();
    const { url } = this.opts.target(partnerId);
    const records = events.map((payload) => {
      const n: NotificationRecord = {
        id: randomUUID(),
        partnerId,
        status: url ? 'PENDING' : 'NOT_SENT',
        eventType: payload.event,
        payload,
        body: JSON.stringify(payload),
        retryAttempts: 0,
        manualRetryCount: 0,
        latestErrorPayload: null,
        lastManualRetryAt: null,
        version: 1,
        createdAt: now,
        updatedAt: now,
        epoch: this.epoch,
      };
      if (url && this.opts.rng() < this.config.dropRate) {
        n.status = 'FAILED';
        n.latestErrorPayload = { sandboxFault: 'dropRate', message: 'Dropped by sandbox fault injection; never delivered.' };
        this.stats.deliveriesDropped++;
      }
      this.notifications.push(n);
      return n;
    });
    const deliverable = records.filter((n) => n.status === 'PENDING');
    if (this.config.reorder) {
      // Spaced by position so arrival order follows the shuffle, plus jitter.
      shuffle(this.opts.rng, deliverable).forEach((n, i) => this.schedule(n, false, i * 15 + this.opts.rng() * 10));
    } else {
      const key = `${partnerId}:${events[0]?.externalUserId ?? ''}`;
      for (const n of deliverable) this.enqueueInOrder(key, n);
    }
    return records;
  }

  /** Capa's manual retry: the caller has already checked status and limits. */
  manualRetry(n: NotificationRecord): void {
    n.retryAttempts = 0;
    n.latestErrorPayload = null;
    n.manualRetryCount++;
    n.lastManualRetryAt = new Date();
    n.status = 'PENDING';
    this.touch(n);
    this.track(this.attempt(n, false));
  }

  setConfig(c: Partial<DeliveryConfig>): DeliveryConfig {
    const wasPaused = this.config.paused;
    this.config = {
      dropRate: clamp01(c.dropRate ?? 0),
      duplicateRate: clamp01(c.duplicateRate ?? 0),
      reorder: Boolean(c.reorder),
      paused: Boolean(c.paused),
    };
    if (wasPaused && !this.config.paused) {
      const held = this.held;
      this.held = [];
      this.track(
        (async () => {
          for (const h of held) await this.attempt(h.n, h.isRetry);
        })(),
      );
    }
    return this.config;
  }

  /**
   * Resolves once nothing is scheduled or in flight. Attempts held by `paused` do not count
   * (otherwise flushing while paused would never return); they stay PENDING until unpaused.
   */
  flush(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  reset(): void {
    this.epoch++;
    for (const t of this.timers) {
      clearTimeout(t);
      this.end();
    }
    this.timers.clear();
    this.held = [];
    this.tails.clear();
    this.notifications.length = 0;
    this.config = { ...DEFAULT_DELIVERY };
    this.stats = emptyStats();
  }

  close(): void {
    this.reset();
    this.closing.abort();
  }

  toListItem(n: NotificationRecord): WebhookNotificationListItem {
    return {
      id: n.id,
      status: n.status,
      eventType: n.eventType,
      retryAttempts: n.retryAttempts,
      manualRetryCount: n.manualRetryCount,
      createdAt: n.createdAt.toISOString(),
      updatedAt: n.updatedAt.toISOString(),
    };
  }

  toDetail(n: NotificationRecord): WebhookNotificationDetail {
    return {
      id: n.id,
      status: n.status,
      retryAttempts: n.retryAttempts,
      manualRetryCount: n.manualRetryCount,
      payload: n.payload,
      latestErrorPayload: n.latestErrorPayload,
      lastManualRetryAt: n.lastManualRetryAt ? n.lastManualRetryAt.toISOString() : null,
      version: n.version,
      createdAt: n.createdAt.toISOString(),
      updatedAt: n.updatedAt.toISOString(),
    };
  }

  // -------------------------------------------------------------------------------------------

  private enqueueInOrder(key: string, n: NotificationRecord): void {
    const prev = this.tails.get(key) ?? Promise.resolve();
    // attempt() does not throw by design; the catch keeps a surprise from becoming an unhandled rejection.
    const next = prev.then(() => this.attempt(n, false)).catch(() => undefined);
    this.tails.set(key, next);
    this.track(next);
    void next.finally(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
  }

  private schedule(n: NotificationRecord, isRetry: boolean, delayMs: number): void {
    this.begin();
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        void this.attempt(n, isRetry)
          .catch(() => undefined)
          .finally(() => this.end());
      },
      Math.max(0, delayMs),
    );
    this.timers.add(t);
  }

  private async attempt(n: NotificationRecord, isRetry: boolean): Promise<void> {
    if (n.epoch !== this.epoch || this.closing.signal.aborted) return;
    if (this.config.paused) {
      this.held.push({ n, isRetry });
      return;
    }
    if (isRetry) n.retryAttempts++;
    const target = this.opts.target(n.partnerId);
    const result: Outcome = target.url
      ? await this.post(target.url, n.body, target.secret)
      : { ok: false, errorPayload: { code: 'NO_WEBHOOK_URL', message: 'The webhook URL was removed before delivery.' } };
    if (n.epoch !== this.epoch) return; // reset while in flight
    if (result.ok) {
      n.status = 'SENT';
      this.touch(n);
      if (this.opts.rng() < this.config.duplicateRate) this.sendDuplicate(n);
      return;
    }
    n.latestErrorPayload = result.errorPayload;
    if (n.retryAttempts >= RETRY_SCHEDULE_SECONDS.length) {
      n.status = 'FAILED';
      this.touch(n);
      return;
    }
    this.touch(n);
    this.schedule(n, true, RETRY_SCHEDULE_SECONDS[n.retryAttempts]! * 1000 * this.opts.timeScale);
  }

  private sendDuplicate(n: NotificationRecord): void {
    this.stats.deliveriesDuplicated++;
    this.begin();
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        const target = this.opts.target(n.partnerId);
        const p = target.url && n.epoch === this.epoch ? this.post(target.url, n.body, target.secret) : Promise.resolve();
        void p.finally(() => this.end());
      },
      5 + this.opts.rng() * 20,
    );
    this.timers.add(t);
  }

  private async post(url: string, body: string, secret: string): Promise<Outcome> {
    this.stats.deliveriesAttempted++;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signBody(body, secret),
          'user-agent': 'capa-sandbox-webhooks/1',
        },
        body,
        redirect: 'manual', // assumption: a redirect is not a delivery
        signal: AbortSignal.any([AbortSignal.timeout(this.opts.deliveryTimeoutMs), this.closing.signal]),
      });
      const text = await res.text();
      if (res.status >= 200 && res.status < 300) {
        this.stats.deliveriesSucceeded++;
        return { ok: true, status: res.status };
      }
      this.stats.deliveriesFailed++;
      return { ok: false, errorPayload: receiverAnswer(res.status, text) };
    } catch (err) {
      this.stats.deliveriesFailed++;
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      return {
        ok: false,
        errorPayload: timedOut
          ? { code: 'TIMEOUT', message: `No answer within ${this.opts.deliveryTimeoutMs} ms` }
          : { code: 'NETWORK_ERROR', message: networkMessage(err) },
      };
    }
  }

  private touch(n: NotificationRecord): void {
    n.version++;
    n.updatedAt = new Date();
  }

  private track(p: Promise<unknown>): void {
    this.begin();
    void p.catch(() => undefined).finally(() => this.end());
  }

  private begin(): void {
    this.active++;
  }

  private end(): void {
    this.active = Math.max(0, this.active - 1);
    if (this.active === 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    }
  }
}

function emptyStats(): DeliveryStats {
  return { deliveriesAttempted: 0, deliveriesSucceeded: 0, deliveriesFailed: 0, deliveriesDuplicated: 0, deliveriesDropped: 0 };
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

/**
 * latestErrorPayload = "what our endpoint answered" (docs). A JSON object answer is kept as is
 * (the docs' sample is such an object); anything else is wrapped with the status (assumption).
 */
function receiverAnswer(status: number, text: string): unknown {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') return parsed;
  } catch {
    // not JSON
  }
  return { statusCode: status, body: text.slice(0, 2000) };
}

function networkMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ? `${err.message} (${cause.code})` : err.message;
}
