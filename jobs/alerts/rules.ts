import type { Db } from '../../db/client.js';
import {
  customerEmailOutcomesSince,
  customersAwaitingCapa,
  driftCorrectionsBetween,
  importsPausedByOutage,
  lastValidWebhookAt,
  signatureVerdictsSince,
} from '../../db/repositories/alert-sources.js';
import { reviewQueueRows } from '../../db/repositories/cases.js';
import type { AlertRuleId, Measurement, RuleSettings } from '../../domain/alerts.js';
import { slaClock, slaTargetsFromHours } from '../../domain/review-sla.js';
import type { Env } from '../../lib/config.js';
import { readCapaCallStats } from '../capa-metrics.js';
import { jobsForQueue } from '../catalog.js';
import type { Queues } from '../queues.js';

/**
 * How each rule measures: from the systems of record (database, Redis), at the evaluator's clock
 * `now`. A measurement says whether the condition holds and with which figures; deciding what
 * that means for the alert is domain/alerts.ts's `decide`. A source that does not answer makes
 * the measurement throw: the evaluator records the error and moves nothing.
 */

export interface Sources {
  db: Db;
  queues: Queues;
  env: Env;
  now: number;
}

export interface MeasureResult {
  m: Measurement;
  /** What the rule keeps for its next evaluation (counter samples); undefined: keep what was there. */
  memory?: unknown;
}

type Measure = (src: Sources, settings: RuleSettings, memory: unknown) => Promise<MeasureResult>;

const iso = (ms: number) => new Date(ms).toISOString();
const pct = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 100 : 0);

/** Per queue that has jobs: waiting (+ prioritized) jobs, the oldest one's age, and workers connected. */
export async function queueFigures(queues: Queues, now: number) {
  return Promise.all(
    queues.allQueues().map(async (q) => {
      const [counts, workers, oldest] = await Promise.all([
        q.getJobCounts('waiting', 'prioritized'),
        q.getWorkers(),
        q.getJobs(['wait'], 0, 0, true),
      ]);
      const first = oldest[0]?.timestamp;
      return {
        name: q.name,
        needsWorker: jobsForQueue(q.name as never).length > 0,
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        oldestSeconds: first ? Math.max(0, Math.round((now - first) / 1000)) : 0,
        workers: workers.length,
      };
    }),
  );
}

/**
 * Capa calls that point at Capa's side: no answer, a timeout or a 5xx. 4xx are answers about our
 * request (a customer Capa does not know), and 429 is the rate limiter doing its job.
 */
export function capaCallTotals(calls: Array<{ outcome: string; status: string; count: number }>): { calls: number; errors: number } {
  let total = 0;
  let errors = 0;
  for (const c of calls) {
    total += c.count;
    if (c.outcome === 'network_error' || c.outcome === 'timeout' || /^5\d\d$/.test(c.status)) errors += c.count;
  }
  return { calls: total, errors };
}

interface Sample {
  at: number;
  calls: number;
  errors: number;
}

/**
 * The change of a cumulative counter over the window, from samples taken at each evaluation: the
 * newest sample at or before the window's start is the baseline (or the oldest one kept, while
 * the window is not yet covered). Counters that went down (Redis lost its data) start over.
 */
export function windowDelta(samples: Sample[], current: Sample, windowMs: number): { delta: Sample; kept: Sample[] } {
  const valid = samples.filter((s) => s.at < current.at && s.calls <= current.calls && s.errors <= current.errors);
  const start = current.at - windowMs;
  const before = valid.filter((s) => s.at <= start);
  const baseline = before[before.length - 1] ?? valid[0] ?? current;
  // Keep one sample at or before the window's start and everything after it.
  const kept = [...(before.length ? [before[before.length - 1]!] : []), ...valid.filter((s) => s.at > start), current];
  return { delta: { at: current.at - baseline.at, calls: current.calls - baseline.calls, errors: current.errors - baseline.errors }, kept };
}

/**
 * Review cases past their SLA, and how far the furthest is past it: the review queue's own clock
 * (app/review/cases.server.ts draws it the same way; an implicit case is open since the customer
 * entered the state). Also read by /metrics.
 */
export async function reviewBreaches(
  db: Db,
  env: Pick<Env, 'REVIEW_SLA_CUSTOMER_HOURS' | 'REVIEW_SLA_CAPA_HOURS' | 'REVIEW_SLA_US_HOURS'>,
  now: number,
): Promise<{ cases: number; overdueSeconds: number; truncated: boolean }> {
  const targets = slaTargetsFromHours({
    customer: env.REVIEW_SLA_CUSTOMER_HOURS,
    capa: env.REVIEW_SLA_CAPA_HOURS,
    us: env.REVIEW_SLA_US_HOURS,
  });
  const found = await reviewQueueRows(db, { filters: {}, operatorId: null });
  let cases = 0;
  let overdueMs = 0;
  for (const r of found.rows) {
    const live = r.caseStatus !== null && r.caseStatus !== 'resolved';
    const clock = slaClock(
      {
        openedAt: r.queuedAt,
        currentState: r.kycState,
        currentStateAt: r.kycStateChangedAt,
        stateChanges: found.history.states.get(r.userId) ?? [],
        statusChanges: live ? (found.history.statuses.get(r.userId) ?? []) : [],
      },
      now,
      targets,
    );
    if (!clock.breached) continue;
    cases++;
    overdueMs = Math.max(overdueMs, clock.currentMs - (clock.targetMs ?? 0));
  }
  return { cases, overdueSeconds: Math.round(overdueMs / 1000), truncated: found.truncated };
}

export const MEASURES: Record<AlertRuleId, Measure> = {
  async 'webhooks.silent'({ db, now }, s) {
    const windowMs = s.params.windowSeconds! * 1000;
    // Links older than a day are rarely opened any more: they do not make silence suspicious.
    const awaiting = await customersAwaitingCapa(db, iso(now - Math.max(windowMs, 86_400_000)));
    const last = await lastValidWebhookAt(db);
    // Silence counts from the later of the last valid webhook and the first customer who could
    // have caused one: nothing is expected before anyone has a link.
    const from = Math.max(last ? Date.parse(last) : 0, awaiting.since ? Date.parse(awaiting.since) : now);
    const silentSeconds = awaiting.count > 0 ? Math.max(0, Math.round((now - from) / 1000)) : 0;
    return {
      m: {
        active: awaiting.count >= s.params.minCustomers! && silentSeconds >= s.params.windowSeconds!,
        value: silentSeconds,
        values: { silentSeconds, customers: awaiting.count, lastValidAt: last },
      },
    };
  },

  async 'webhooks.signature_failures'({ db, now }, s) {
    const { total, bad } = await signatureVerdictsSince(db, iso(now - s.params.windowSeconds! * 1000));
    const percent = pct(bad, total);
    return {
      m: {
        active: bad >= s.params.minFailures! && percent >= s.params.percent!,
        value: percent,
        values: { percent, failed: bad, total, windowSeconds: s.params.windowSeconds! },
      },
    };
  },

  async 'capa.errors'({ queues, now }, s, memory) {
    const snapshot = await readCapaCallStats(queues.connection, queues.prefix);
    const current: Sample = { at: now, ...capaCallTotals(snapshot.calls) };
    const samples = Array.isArray((memory as { samples?: Sample[] } | null)?.samples) ? (memory as { samples: Sample[] }).samples : [];
    const { delta, kept } = windowDelta(samples, current, s.params.windowSeconds! * 1000);
    const percent = pct(delta.errors, delta.calls);
    return {
      m: {
        active: delta.calls >= s.params.minCalls! && percent >= s.params.percent!,
        value: percent,
        values: { percent, errors: delta.errors, calls: delta.calls, windowSeconds: Math.round(delta.at / 1000) },
      },
      memory: { samples: kept.slice(-500) },
    };
  },

  async 'imports.paused'({ db, now }) {
    const paused = await importsPausedByOutage(db);
    const first = paused[0];
    return {
      m: {
        active: paused.length > 0,
        value: paused.length,
        values: {
          imports: paused.length,
          fileName: first?.fileName ?? null,
          pausedSeconds: first ? Math.max(0, Math.round((now - Date.parse(first.since)) / 1000)) : 0,
        },
        ...(paused.length === 1 ? { page: `/imports/${first!.id}` } : {}),
      },
    };
  },

  async 'queues.backlog'({ queues, now }, s) {
    const figures = await queueFigures(queues, now);
    const over = figures.filter((q) => q.waiting > s.params.waiting! || q.oldestSeconds > s.params.oldestSeconds!);
    const worst = [...figures].sort((a, b) => b.waiting - a.waiting)[0];
    const shown = over[0] ?? worst;
    return {
      m: {
        active: over.length > 0,
        value: Math.max(0, ...figures.map((q) => q.waiting)),
        values: {
          queues: over.map((q) => q.name).join(', '),
          queue: shown?.name ?? null,
          waiting: shown?.waiting ?? 0,
          oldestSeconds: shown?.oldestSeconds ?? 0,
        },
      },
    };
  },

  async 'workers.none'({ queues, now }) {
    const figures = await queueFigures(queues, now);
    const without = figures.filter((q) => q.needsWorker && q.workers === 0);
    return {
      m: {
        active: without.length > 0,
        value: without.length,
        values: {
          queues: without.map((q) => q.name).join(', '),
          count: without.length,
          backlog: without.reduce((n, q) => n + q.waiting, 0),
        },
      },
    };
  },

  async 'email.failures'({ db, now }, s) {
    const { sent, failed } = await customerEmailOutcomesSince(db, iso(now - s.params.windowSeconds! * 1000));
    const settled = sent + failed;
    const percent = pct(failed, settled);
    return {
      m: {
        active: (settled >= s.params.minMessages! && percent >= s.params.percent!) || failed >= s.params.bounces!,
        value: percent,
        values: { percent, failed, settled, windowSeconds: s.params.windowSeconds! },
      },
    };
  },

  async 'review.sla_breached'({ db, env, now }, s) {
    const { cases, overdueSeconds, truncated } = await reviewBreaches(db, env, now);
    return {
      m: {
        active: cases >= s.params.cases!,
        value: cases,
        values: { cases, overdueSeconds, truncated: truncated ? 1 : 0 },
      },
    };
  },

  async 'drift.spike'({ db, now }, s) {
    const windowMs = s.params.windowSeconds! * 1000;
    const start = now - windowMs;
    const corrections = await driftCorrectionsBetween(db, iso(start), iso(now + 1));
    const baselineMs = s.params.baselineDays! * 86_400_000;
    const before = await driftCorrectionsBetween(db, iso(start - baselineMs), iso(start));
    // The usual number per window over the baseline period before it.
    const baseline = Math.round((before / (baselineMs / windowMs)) * 100) / 100;
    return {
      m: {
        active: corrections >= s.params.minCorrections! && corrections >= s.params.factor! * baseline,
        value: corrections,
        values: { corrections, baseline, windowSeconds: s.params.windowSeconds! },
      },
    };
  },
};
