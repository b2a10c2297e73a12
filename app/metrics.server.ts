import { timingSafeEqual } from 'node:crypto';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import {
  customerEmailTotals,
  customersAwaitingCapa,
  driftCorrectionsTotal,
  lastValidWebhookAt,
  pausedImportCounts,
} from '../db/repositories/alert-sources.js';
import { openAlerts } from '../db/repositories/alerts.js';
import { inboxCounts } from '../db/repositories/inbox-query.js';
import { reviewBreaches } from '../jobs/alerts/rules.js';
import { statusCounts, type StatusTable } from '../db/repositories/status-counts.js';
import { CAPA_LATENCY_BUCKETS_S, CapaCallStats, readCapaCallStats } from '../jobs/capa-metrics.js';
import { pingRedis } from '../lib/redis.js';
import { services } from './services.server';

/**
 * /metrics in Prometheus text format (prom-client). Most figures are read at scrape time from the
 * systems of record — the database (webhooks by verdict, inbox by status, imports, notifications)
 * and Redis (jobs by state, workers, Capa calls from every process) — so every web process
 * reports the same numbers and nothing is lost on restart. Only what never reaches a store (a
 * body refused as too large) is an in-process counter, fed by both intakes: the Remix route and
 * the express fast path, which reaches this module through the build's entry (app/host.server.ts)
 * so the web process has one copy of it and one registry.
 */
const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused', 'completed', 'failed'] as const;

/** Tables owned by other features, counted by status. */
const STATUS_TABLES = [
  { table: 'imports', metric: 'kyc_imports', help: 'CSV imports by status.' },
  { table: 'import_rows', metric: 'kyc_import_rows', help: 'Import rows by status.' },
  { table: 'notifications', metric: 'kyc_notifications', help: 'Customer notifications (e-mail) by status.' },
] as const satisfies ReadonlyArray<{ table: StatusTable; metric: string; help: string }>;

interface State {
  registry: Registry;
  refused: Counter<'reason'>;
  deliveries: Gauge<'verdict'>;
  inbox: Gauge<'status'>;
  jobs: Gauge<'queue' | 'state'>;
  workers: Gauge<'queue'>;
  up: Gauge<'component'>;
  statusTables: Map<string, Gauge<'status'>>;
  capaSnapshot: Awaited<ReturnType<typeof readCapaCallStats>>;
  alerting: ReturnType<typeof alertingGauges>;
}

/**
 * The figures deploy/prometheus/alerts.yml needs to state KYC Desk's alert rules over /metrics
 * (the same conditions the evaluator checks, for teams that alert from Prometheus), and the
 * alerts KYC Desk itself has open.
 */
function alertingGauges(registry: Registry) {
  const g = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  return {
    lastValidWebhook: g(
      'kyc_webhook_last_valid_timestamp_seconds',
      'When the newest webhook with a valid signature was received (0: never).',
    ),
    awaiting: g(
      'kyc_customers_awaiting_capa',
      'Customers Capa should be telling us about: IN_PROGRESS, or LINK_ISSUED within the last day.',
    ),
    awaitingSince: g(
      'kyc_customers_awaiting_capa_since_timestamp_seconds',
      'Since when the earliest of the customers awaiting Capa has been waiting (0: nobody waits).',
    ),
    importsPaused: g('kyc_imports_paused', 'Imports paused, by why: a Capa outage or an operator.', ['kind']),
    oldestWaiting: g('kyc_queue_oldest_waiting_seconds', 'Age of the oldest job waiting in each queue (0: none waiting).', ['queue']),
    customerEmails: g('kyc_customer_emails', 'Customer e-mails settled, by outcome (monotonic).', ['status']),
    drift: g('kyc_drift_corrections', 'States corrected by polling Capa (drift), ever (monotonic).'),
    slaBreached: g('kyc_review_sla_breached', 'Review cases past their SLA.'),
    slaOverdue: g('kyc_review_sla_overdue_seconds', 'How far past its SLA the furthest review case is.'),
    open: g('kyc_alerts_open', "KYC Desk's own open alerts (1 each), by rule, severity and state.", ['rule', 'severity', 'state']),
  };
}

let current: State | undefined;

function state(): State {
  if (current) return current;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'kyc_web_' });
  const s: State = {
    registry,
    refused: new Counter({
      name: 'kyc_webhooks_refused_total',
      help: 'Webhook requests refused before they could be stored (e.g. body too large).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    // A counter in meaning (rows only grow, unless an operator purges the inbox); read from the inbox.
    deliveries: new Gauge({
      name: 'kyc_webhooks_received',
      help: 'Webhook deliveries stored in the inbox, by signature verdict (monotonic unless the inbox is purged).',
      labelNames: ['verdict'],
      registers: [registry],
    }),
    inbox: new Gauge({
      name: 'kyc_webhook_inbox',
      help: 'Webhook inbox rows by processing status.',
      labelNames: ['status'],
      registers: [registry],
    }),
    jobs: new Gauge({ name: 'kyc_jobs', help: 'BullMQ jobs by queue and state.', labelNames: ['queue', 'state'], registers: [registry] }),
    workers: new Gauge({
      name: 'kyc_queue_workers',
      help: 'Workers connected to each queue (BullMQ getWorkers).',
      labelNames: ['queue'],
      registers: [registry],
    }),
    up: new Gauge({
      name: 'kyc_up',
      help: '1 when the component answered during this scrape.',
      labelNames: ['component'],
      registers: [registry],
    }),
    statusTables: new Map(),
    capaSnapshot: { calls: [], latency: [] },
    alerting: alertingGauges(registry),
  };
  for (const t of STATUS_TABLES) {
    s.statusTables.set(t.table, new Gauge({ name: t.metric, help: t.help, labelNames: ['status'], registers: [registry] }));
  }
  // Capa figures come from the Redis hash every process writes to: custom collectors that hand
  // prom-client ready-made values (a prom-client Histogram cannot be loaded from outside).
  registry.registerMetric({
    name: 'kyc_capa_calls_total',
    help: 'Capa API calls (each attempt) by operation, outcome and HTTP status, from all processes.',
    type: 'counter',
    get: async () => ({
      name: 'kyc_capa_calls_total',
      help: '',
      type: 'counter',
      aggregator: 'sum',
      values: s.capaSnapshot.calls.map((c) => ({ value: c.count, labels: { op: c.op, outcome: c.outcome, status: c.status } })),
    }),
    reset: () => {},
  } as never);
  registry.registerMetric({
    name: 'kyc_capa_call_duration_seconds',
    help: 'Capa API call latency (each attempt), from all processes.',
    type: 'histogram',
    get: async () => ({
      name: 'kyc_capa_call_duration_seconds',
      help: '',
      type: 'histogram',
      aggregator: 'sum',
      values: s.capaSnapshot.latency.flatMap((l) => {
        let cum = 0;
        const bucketLines = [...CAPA_LATENCY_BUCKETS_S, Infinity].map((le, i) => {
          cum += l.buckets[i] ?? 0;
          return {
            metricName: 'kyc_capa_call_duration_seconds_bucket',
            value: cum,
            labels: { op: l.op, le: le === Infinity ? '+Inf' : String(le) },
          };
        });
        return [
          ...bucketLines,
          { metricName: 'kyc_capa_call_duration_seconds_sum', value: l.sumSeconds, labels: { op: l.op } },
          { metricName: 'kyc_capa_call_duration_seconds_count', value: l.count, labels: { op: l.op } },
        ];
      }),
    }),
    reset: () => {},
  } as never);
  current = s;
  return s;
}

/**
 * Starts the process's own figures (event-loop delay is sampled from then on), so the first
 * scrape already has them; the web host calls it at start.
 */
export function startProcessMetrics(): void {
  state();
}

export const metrics = {
  /** Called by the intake for each request; only refusals that were never stored are counted here. */
  webhook(verdict: string): void {
    if (verdict === 'too_large') state().refused.inc({ reason: 'too_large' });
  },
  snapshot() {
    return { refused: state().refused };
  },
};

/**
 * The web process's own Capa calls (delivery log, settings) feed the same Redis figures. The
 * buffer belongs to the services (it writes through their Redis connection, and a scrape flushes
 * it first), so whoever holds those services records into, and flushes, the same one.
 */
export async function webCapaStats(): Promise<CapaCallStats> {
  const s = await services();
  s.capaStats ??= new CapaCallStats(s.queues.connection, s.queues.prefix);
  return s.capaStats;
}

async function collect(): Promise<void> {
  const s = state();
  const { db, queues, capaStats, env } = await services();
  const now = Date.now();
  const a = s.alerting;

  try {
    const { byVerdict, byStatus } = await inboxCounts(db);
    s.deliveries.reset();
    s.inbox.reset();
    for (const [k, n] of Object.entries(byVerdict)) s.deliveries.set({ verdict: k }, n);
    for (const [k, n] of Object.entries(byStatus)) s.inbox.set({ status: k }, n);
    for (const t of STATUS_TABLES) {
      const g = s.statusTables.get(t.table)!;
      g.reset();
      for (const r of await statusCounts(db, t.table)) g.set({ status: r.status }, r.n);
    }
    const seconds = (iso: string | null) => (iso ? Date.parse(iso) / 1000 : 0);
    a.lastValidWebhook.set(seconds(await lastValidWebhookAt(db)));
    const awaiting = await customersAwaitingCapa(db, new Date(now - 86_400_000).toISOString());
    a.awaiting.set(awaiting.count);
    a.awaitingSince.set(seconds(awaiting.since));
    const paused = await pausedImportCounts(db);
    for (const kind of ['outage', 'operator'] as const) a.importsPaused.set({ kind }, paused[kind]);
    const emails = await customerEmailTotals(db);
    for (const status of ['sent', 'failed'] as const) a.customerEmails.set({ status }, emails[status]);
    a.drift.set(await driftCorrectionsTotal(db));
    const sla = await reviewBreaches(db, env, now);
    a.slaBreached.set(sla.cases);
    a.slaOverdue.set(sla.overdueSeconds);
    a.open.reset();
    for (const al of await openAlerts(db)) a.open.set({ rule: al.ruleId, severity: al.severity, state: al.state }, 1);
    s.up.set({ component: 'db' }, 1);
  } catch {
    s.up.set({ component: 'db' }, 0);
  }

  if (await pingRedis(queues.connection, 1000)) {
    s.up.set({ component: 'redis' }, 1);
    try {
      await capaStats?.flush();
      s.jobs.reset();
      s.workers.reset();
      await Promise.all(
        queues.allQueues().map(async (q) => {
          const [counts, workers, oldest] = await Promise.all([
            q.getJobCounts(...JOB_STATES),
            q.getWorkers(),
            q.getJobs(['wait'], 0, 0, true),
          ]);
          for (const st of JOB_STATES) s.jobs.set({ queue: q.name, state: st }, counts[st] ?? 0);
          s.workers.set({ queue: q.name }, workers.length);
          const first = oldest[0]?.timestamp;
          a.oldestWaiting.set({ queue: q.name }, first ? Math.max(0, Math.round((now - first) / 1000)) : 0);
        }),
      );
      s.capaSnapshot = await readCapaCallStats(queues.connection, queues.prefix);
    } catch {
      s.up.set({ component: 'redis' }, 0);
    }
  } else {
    s.up.set({ component: 'redis' }, 0);
  }
}

let inFlight: Promise<string> | undefined;

/** The exposition text. Concurrent scrapes share one collection. */
export async function renderMetrics(): Promise<{ body: string; contentType: string }> {
  inFlight ??= (async () => {
    try {
      await collect();
      return await state().registry.metrics();
    } finally {
      inFlight = undefined;
    }
  })();
  return { body: await inFlight, contentType: state().registry.contentType };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/**
 * Who may read /metrics: with METRICS_TOKEN set, a caller presenting it as a bearer token; without
 * it, only loopback clients (a scraper on the same host). `clientAddress` is express's req.ip, which
 * honours X-Forwarded-For only from a loopback proxy — so a proxied outside caller is not local.
 */
export async function metricsAccess(
  request: Request,
  clientAddress: string | undefined,
): Promise<{ ok: true } | { ok: false; status: 401 | 403; message: string }> {
  const { env } = await services();
  const token = env.METRICS_TOKEN;
  if (token) {
    const m = /^Bearer\s+(.+)$/i.exec(request.headers.get('authorization') ?? '');
    const given = Buffer.from(m?.[1]?.trim() ?? '');
    const want = Buffer.from(token);
    if (given.length === want.length && timingSafeEqual(given, want)) return { ok: true };
    return { ok: false, status: 401, message: 'metrics need "Authorization: Bearer <METRICS_TOKEN>"' };
  }
  if (clientAddress && LOOPBACK.test(clientAddress)) return { ok: true };
  return { ok: false, status: 403, message: 'metrics are served to loopback clients only; set METRICS_TOKEN to scrape from elsewhere' };
}
