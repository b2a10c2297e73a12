import type { Redis } from 'ioredis';
import type { CapaCallInfo } from '../capa/client.js';

/**
 * Capa call counts and latencies from every process (workers make most calls, the web process a
 * few), summed in one Redis hash so the web process's /metrics shows the whole picture from one
 * scrape target. Calls are buffered in memory and flushed once a second with one pipeline, so a
 * Capa call never waits on Redis; while Redis is down the increments are kept and flushed later.
 */
export const CAPA_LATENCY_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export const capaStatsKey = (prefix: string): string => `${prefix}:ops:capa-calls`;

// Field layout: c|op|outcome|status → calls; b|op|i → calls in bucket i (i = buckets.length: +Inf);
// s|op → summed milliseconds.
export class CapaCallStats {
  private pending = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    flushEveryMs = 1000,
  ) {
    this.timer = setInterval(() => void this.flush(), flushEveryMs);
    this.timer.unref();
  }

  /** The CapaClient onCall hook. Never throws, never blocks. */
  readonly record = (info: CapaCallInfo): void => {
    const op = info.op.replace(/\|/g, '_');
    const seconds = info.ms / 1000;
    let i = CAPA_LATENCY_BUCKETS_S.findIndex((le) => seconds <= le);
    if (i < 0) i = CAPA_LATENCY_BUCKETS_S.length;
    this.bump(`c|${op}|${info.outcome}|${info.status ?? 'none'}`, 1);
    this.bump(`b|${op}|${i}`, 1);
    this.bump(`s|${op}`, Math.max(0, Math.round(info.ms)));
  };

  private bump(field: string, by: number): void {
    this.pending.set(field, (this.pending.get(field) ?? 0) + by);
  }

  flush(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        if (this.pending.size === 0 || this.redis.status !== 'ready') return;
        const batch = this.pending;
        this.pending = new Map();
        const key = capaStatsKey(this.prefix);
        const p = this.redis.pipeline();
        for (const [f, n] of batch) p.hincrby(key, f, n);
        const results = await p.exec().catch(() => null);
        if (!results || results.some(([err]) => err)) {
          // Not (fully) written: keep them for the next flush rather than lose them.
          for (const [f, n] of batch) this.bump(f, n);
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

export interface CapaCallSnapshot {
  calls: Array<{ op: string; outcome: string; status: string; count: number }>;
  latency: Array<{ op: string; buckets: number[]; sumSeconds: number; count: number }>;
}

export async function readCapaCallStats(redis: Redis, prefix: string): Promise<CapaCallSnapshot> {
  const h = await redis.hgetall(capaStatsKey(prefix));
  const calls: CapaCallSnapshot['calls'] = [];
  const lat = new Map<string, { buckets: number[]; sumMs: number }>();
  const latFor = (op: string) => {
    let l = lat.get(op);
    if (!l) lat.set(op, (l = { buckets: new Array(CAPA_LATENCY_BUCKETS_S.length + 1).fill(0), sumMs: 0 }));
    return l;
  };
  for (const [field, raw] of Object.entries(h)) {
    const n = Number(raw);
    if (!Number.isFinite(n)) continue;
    const [kind, op, a, b] = field.split('|');
    if (!op) continue;
    if (kind === 'c' && a && b) calls.push({ op, outcome: a, status: b, count: n });
    else if (kind === 'b' && a !== undefined) {
      const i = Number(a);
      if (Number.isInteger(i) && i >= 0 && i <= CAPA_LATENCY_BUCKETS_S.length) latFor(op).buckets[i]! += n;
    } else if (kind === 's') latFor(op).sumMs += n;
  }
  const latency = [...lat.entries()].map(([op, l]) => ({
    op,
    buckets: l.buckets,
    sumSeconds: l.sumMs / 1000,
    count: l.buckets.reduce((x, y) => x + y, 0),
  }));
  return { calls, latency };
}
