import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { createDb, migrateToLatest } from '../db/client.js';
import { ALERT_RULE_IDS, type AlertRuleId } from '../domain/alerts.js';
import { evaluateAlerts, rulesFor } from '../jobs/alerts/engine.js';
import { reviewBreaches } from '../jobs/alerts/rules.js';
import { capaStatsKey } from '../jobs/capa-metrics.js';
import { Queues } from '../jobs/queues.js';
import { parseEnv } from '../lib/config.js';
import { logger } from '../lib/logger.js';
import { loadAverage, machineInfo, percentile, startRedis, tempSqliteUrl, writeResults } from './lib.js';

/**
 * What one evaluation of the alert rules costs on a mid-size installation (SQLite, real Redis):
 * 100k customers (2,000 in the review queue, its cap), 200k webhook deliveries, 100k messages in
 * the ledger and 10k drift corrections over a week, 2,000 jobs waiting. Every rule runs every
 * ALERTS_EVERY_SECONDS (60) on one worker, and the review SLA figures are also read by every
 * /metrics scrape. Reported: milliseconds per round (all worker rules; the web process's rule) and
 * per rule, p50 / p95 over ROUNDS rounds.
 *
 *   npx tsx bench/alerts.ts            (BENCH_ROUNDS=30)
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const CUSTOMERS = 100_000;
const DELIVERIES = 200_000;
const MESSAGES = 100_000;
const DRIFT = 10_000;
const WEEK = 7 * 86_400_000;

function seed(file: string) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  const states = (i: number) =>
    i < 1000 ? 'REVIEW_NEEDED' : i < 2000 ? 'REJECTED' : i < 7000 ? 'IN_PROGRESS' : i < 27000 ? 'LINK_ISSUED' : 'VERIFIED';
  db.transaction(() => {
    const user = db.prepare(`insert into users (id, external_user_id, capa_user_id, type, email, country, kyc_state, kyc_state_changed_at,
      capa_confirmed_at, capa_sync, link_expired, created_at, updated_at) values (?, ?, ?, 'INDIVIDUAL', ?, 'MX', ?, ?, ?, 'created', 0, ?, ?)`);
    const change = db.prepare(
      `insert into state_changes (user_id, at, from_state, to_state, cause_type) values (?, ?, 'IN_PROGRESS', ?, 'webhook')`,
    );
    for (let i = 0; i < CUSTOMERS; i++) {
      const at = iso(now - ((i * 7919) % WEEK));
      user.run(`u-${i}`, `cust-${i}`, `capa-${i}`, `cust-${i}@example.mx`, states(i), at, at, at, at);
      if (i < 2000) change.run(`u-${i}`, at, states(i));
    }
    const delivery = db.prepare(`insert into webhook_inbox (received_at, raw_body, headers, signature_verdict, event_type, event_name,
      external_user_id, dedupe_key, status) values (?, '{}', '{}', ?, 'KYC', 'VERIFIED_USER', ?, ?, 'processed')`);
    for (let i = 0; i < DELIVERIES; i++) {
      delivery.run(
        iso(now - WEEK + Math.floor((i / DELIVERIES) * WEEK)),
        i % 97 === 0 ? 'mismatch' : 'valid',
        `cust-${i % CUSTOMERS}`,
        `d-${i}`,
      );
    }
    const message = db.prepare(`insert into notifications (id, user_id, kind, channel, locale, address, dedupe_key, status, attempts,
      created_at, updated_at, sent_at, failed_at) values (?, ?, 'kyc_link', 'email', 'es', ?, ?, ?, 1, ?, ?, ?, ?)`);
    for (let i = 0; i < MESSAGES; i++) {
      const at = iso(now - WEEK + Math.floor((i / MESSAGES) * WEEK));
      const failed = i % 50 === 0;
      message.run(
        randomUUID(),
        `u-${i % CUSTOMERS}`,
        `cust-${i}@example.mx`,
        `m-${i}`,
        failed ? 'failed' : 'sent',
        at,
        at,
        failed ? null : at,
        failed ? at : null,
      );
    }
    const drift = db.prepare(
      `insert into drift_events (user_id, detected_at, was_state, now_state, job_name) values (?, ?, 'LINK_ISSUED', 'VERIFIED', 'fetch-details')`,
    );
    for (let i = 0; i < DRIFT; i++) drift.run(`u-${i % CUSTOMERS}`, iso(now - WEEK + Math.floor((i / DRIFT) * WEEK)));
  })();
  db.exec('analyze');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

async function main() {
  const redis = await startRedis();
  const url = tempSqliteUrl('alerts');
  const prefix = 'bench-alerts';
  const db = createDb(url);
  await migrateToLatest(db);
  const t0 = Date.now();
  seed(url.replace(/^file:/, ''));
  const seedMs = Date.now() - t0;
  const env = parseEnv({
    NODE_ENV: 'production',
    SESSION_SECRET: 'bench-session-secret-0123456789',
    DATABASE_URL: url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
  });
  const queues = new Queues({ redis: env.redis, prefix });
  await queues
    .queue('capa')
    .addBulk(Array.from({ length: 2000 }, (_, i) => ({ name: 'fetch-details', data: { userId: `u-${i}`, cause: 'bench' } })));
  await queues.connection.hset(capaStatsKey(prefix), { 'c|createUser|ok|201': 50_000, 'c|createUser|http_error|500': 700 });
  const deps = { db, queues, env, logger };

  const time = async (fn: () => Promise<unknown>) => {
    const s = performance.now();
    await fn();
    return performance.now() - s;
  };
  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { 'p50 ms': Math.round(percentile(sorted, 50)), 'p95 ms': Math.round(percentile(sorted, 95)) };
  };

  // Warm-up (statement caches, first Redis connections), then the rounds.
  await evaluateAlerts(deps, { evaluator: 'worker' });
  const worker: number[] = [];
  const web: number[] = [];
  const sla: number[] = [];
  const perRule = new Map<AlertRuleId, number[]>(ALERT_RULE_IDS.map((id) => [id, []]));
  for (let r = 0; r < ROUNDS; r++) {
    worker.push(await time(() => evaluateAlerts(deps, { evaluator: 'worker' })));
    web.push(await time(() => evaluateAlerts(deps, { evaluator: 'web' })));
    sla.push(await time(() => reviewBreaches(db, env, Date.now())));
    for (const id of ALERT_RULE_IDS) perRule.get(id)!.push(await time(() => evaluateAlerts(deps, { rules: [id] })));
  }
  const open = await db.selectFrom('alerts').select(['ruleId', 'state']).where('openKey', 'is not', null).execute();

  writeResults('alerts', {
    machine: machineInfo({ redis: redis.version, rounds: String(ROUNDS), 'seeding (s)': (seedMs / 1000).toFixed(1) }),
    sections: [
      {
        title: 'One evaluation round',
        rows: [
          { round: `worker rules (${rulesFor('worker').length}, the scheduled job)`, ...stats(worker) },
          { round: 'web rule (workers.none, the web process)', ...stats(web) },
          { round: 'review SLA figures (also read by each /metrics scrape)', ...stats(sla) },
        ],
        notes: [
          `${CUSTOMERS} customers (2,000 in the review queue), ${DELIVERIES} webhook deliveries, ${MESSAGES} ledger messages, ${DRIFT} drift corrections over 7 days; 2,000 jobs waiting on capa`,
          `alerts open after the rounds: ${open.map((a) => `${a.ruleId} (${a.state})`).join(', ') || 'none'}`,
          `load average at the end: ${loadAverage()}`,
        ],
      },
      {
        title: 'Per rule (one rule evaluated alone, alert bookkeeping included)',
        rows: [...perRule].map(([rule, xs]) => ({ rule, ...stats(xs) })),
      },
    ],
  });
  await queues.close();
  await db.destroy();
  redis.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
