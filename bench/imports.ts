/**
 * Bulk import benchmarks.
 *  A. Staging 100k rows (parse + validate + store, one transaction): seconds and peak RSS growth.
 *     Goal ≤ 3 s and ≤ 150 MB.
 *  B. 10k rows end to end against the sandbox with 50 ms latency and a sandbox rate limit R equal
 *     to our CAPA_RATE_LIMIT_PER_SEC: elapsed vs the floor calls/R. Goal ≤ 1.03 × floor, 429s ≤ 1%.
 * Run: npx tsx bench/imports.ts   (BENCH_IMPORT_ROWS, BENCH_IMPORT_RATE, BENCH_STAGE_ROWS override;
 *      BENCH_IMPORT_PARTS=A or B runs one part; a partial run or another rate writes
 *      imports-<parts>-r<rate>.{json,md} and leaves imports.{json,md} as the full run left it)
 */
import { createReadStream, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CapaClient } from '../capa/client.js';
import { createSandbox } from '../capa/sandbox/server.js';
import { createDb, migrateToLatest } from '../db/client.js';
import { commitImport, findImport, importProgress } from '../db/repositories/imports.js';
import { insertUser } from '../db/repositories/users.js';
import { feedImport } from '../jobs/imports/orchestration.js';
import { stageImport } from '../jobs/imports/stage.js';
import { Queues } from '../jobs/queues.js';
import { startWorkers } from '../jobs/worker.js';
import { parseEnv } from '../lib/config.js';
import { logger } from '../lib/logger.js';
import { machineInfo, startRedis, tempSqliteUrl, writeResults } from './lib.js';

const STAGE_ROWS = Number(process.env.BENCH_STAGE_ROWS ?? 100_000);
const E2E_ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 10_000);
const RATE = Number(process.env.BENCH_IMPORT_RATE ?? 100);
const LINK_EVERY = Number(process.env.BENCH_IMPORT_LINK_EVERY ?? 10);

function mb(n: number): number {
  return Math.round((n / 2 ** 20) * 10) / 10;
}

async function stagingBench() {
  const url = tempSqliteUrl('imports-stage');
  const db = createDb(url);
  await migrateToLatest(db);
  // A realistic table to check "already exists here" against.
  for (let i = 0; i < 2000; i++) await insertUser(db, { externalUserId: `pre-${i}`, email: `pre.${i}@example.mx`, type: 'INDIVIDUAL' });
  const file = path.join(os.tmpdir(), `kyc-bench-${process.pid}-100k.csv`);
  const lines = ['externalUserId,email,type,alias,country,sendLink,notes'];
  for (let i = 1; i <= STAGE_ROWS; i++) {
    // ~2% of rows have a problem: bad e-mail, unknown type, duplicates, already here.
    const bad = i % 50 === 0 ? (i % 200 === 0 ? 'dup' : i % 150 === 0 ? 'exists' : 'email') : null;
    const email =
      bad === 'email'
        ? `broken-${i}`
        : bad === 'dup'
          ? `row.${i - 1}@example.mx`
          : bad === 'exists'
            ? `pre.${i % 2000}@example.mx`
            : `row.${i}@example.mx`;
    lines.push(`cust-${i},${email},INDIVIDUAL,Customer ${i},${i % 2 ? 'MX' : 'DO'},${i % 3 ? 'yes' : 'no'},imported by bench`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  const bytes = Buffer.byteLength(lines.join('\n'));
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  const t0 = performance.now();
  const r = await stageImport(db, {
    source: createReadStream(file, { highWaterMark: 256 * 1024 }),
    fileName: '100k.csv',
    createdBy: null,
    limits: { maxBytes: 20 * 2 ** 20, maxRows: 100_000 },
  });
  const secs = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  await db.destroy();
  return {
    title: `A. Staging ${STAGE_ROWS.toLocaleString('en-US')} rows (parse + validate + store)`,
    rows: [
      {
        rows: r.totalRows,
        valid: r.validRows,
        invalid: r.invalidRows,
        'file MB': mb(bytes),
        seconds: Math.round(secs * 100) / 100,
        'rows/s': Math.round(r.totalRows / secs),
        'RSS before MB': mb(rss0),
        'peak RSS MB': mb(peak),
        'RSS growth MB': mb(peak - rss0),
        'goal ≤ 3 s': secs <= 3 ? 'met' : 'missed',
        'goal ≤ 150 MB': peak - rss0 <= 150 * 2 ** 20 ? 'met' : 'missed',
      },
    ],
    notes: [
      'One transaction on SQLite (WAL, synchronous=FULL), 1,000-row batches, existing-customer checks batched per 500 keys; RSS sampled every 10 ms in this process.',
    ],
  };
}

async function endToEndBench() {
  // Link e-mails have no SMTP server here and fail by design; keep their warnings out of the output.
  logger.level = 'error';
  const redis = await startRedis();
  const sandbox = await createSandbox({
    partners: [{ apiKey: 'bench-partner-key', webhookSecret: 'bench-webhook-secret', webhookUrl: null }],
    seed: 7,
  });
  sandbox.setFaults({ latencyMs: 50, rateLimitPerSec: RATE });
  const url = tempSqliteUrl('imports-e2e');
  const env = parseEnv({
    NODE_ENV: 'production',
    SESSION_SECRET: 'bench-session-secret-0123456789',
    DATABASE_URL: url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'bench',
    CAPA_BASE_URL: sandbox.url,
    CAPA_API_KEY: 'bench-partner-key',
    CAPA_RATE_LIMIT_PER_SEC: String(RATE),
    WORKER_CONCURRENCY: String(Math.max(16, Math.ceil(RATE * 0.05 * 3))),
    LOG_LEVEL: 'silent',
    PUBLIC_URL: 'http://127.0.0.1:3999',
  });
  const db = createDb(url);
  await migrateToLatest(db);
  const capa = new CapaClient({ baseUrl: sandbox.url, apiKey: 'bench-partner-key', timeoutMs: 10_000 });
  const workers = await startWorkers({ env, db, capa, logger, redis: env.redis, prefix: env.QUEUE_PREFIX });
  const queues = new Queues({ redis: env.redis, prefix: env.QUEUE_PREFIX });
  const lines = ['externalUserId,email,country,sendLink'];
  for (let i = 1; i <= E2E_ROWS; i++) lines.push(`e2e-${i},e2e.${i}@example.mx,MX,${LINK_EVERY && i % LINK_EVERY === 0 ? 'yes' : 'no'}`);
  async function* src() {
    yield Buffer.from(lines.join('\n'));
  }
  const staged = await stageImport(db, { source: src(), fileName: 'e2e.csv', createdBy: null, limits: { maxBytes: 2e7, maxRows: 1e5 } });
  const links = LINK_EVERY ? Math.floor(E2E_ROWS / LINK_EVERY) : 0;
  const calls = E2E_ROWS + links;
  const before = sandbox.stats();
  const t0 = performance.now();
  await commitImport(db, staged.importId, null);
  await feedImport({ db, env, enqueue: queues }, staged.importId);
  for (;;) {
    const imp = await findImport(db, staged.importId);
    if (imp?.status === 'completed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const secs = (performance.now() - t0) / 1000;
  const p = await importProgress(db, staged.importId);
  const s = sandbox.stats();
  const apiCalls = s.apiCalls.total - before.apiCalls.total;
  const r429 = s.sent429 - before.sent429;
  const floor = calls / RATE;
  await workers.close(5000);
  await queues.close();
  await db.destroy();
  await sandbox.close();
  redis.stop();
  return {
    title: `B. ${E2E_ROWS.toLocaleString('en-US')} rows end to end (sandbox latency 50 ms, R = ${RATE}/s on both sides)`,
    rows: [
      {
        rows: E2E_ROWS,
        'links asked': links,
        done: p.done,
        failed: p.failed,
        'Capa calls (useful)': calls,
        'Capa calls (all)': apiCalls,
        '429s': r429,
        '429 %': Math.round((r429 / Math.max(1, apiCalls)) * 10000) / 100,
        'floor s (calls/R)': Math.round(floor * 10) / 10,
        'elapsed s': Math.round(secs * 10) / 10,
        'elapsed / floor': Math.round((secs / floor) * 1000) / 1000,
        duplicates: s.createUserCalls.duplicates,
        'goal ≤ 1.03×': secs / floor <= 1.03 ? 'met' : 'missed',
        'goal 429 ≤ 1%': r429 / Math.max(1, apiCalls) <= 0.01 ? 'met' : 'missed',
      },
    ],
    notes: [
      'Elapsed from commit to the import being completed; one worker process (all queues), the relay ticking every second.',
      'The sandbox token bucket and our BullMQ limiter (Redis-kept, shared by all workers) both allow R per second.',
    ],
  };
}

const PARTS = (process.env.BENCH_IMPORT_PARTS ?? 'A,B').split(',');
const sections = [];
if (PARTS.includes('A')) sections.push(await stagingBench());
if (PARTS.includes('B')) sections.push(await endToEndBench());
writeResults(RATE === 100 && PARTS.length === 2 ? 'imports' : `imports-${PARTS.join('')}-r${RATE}`, {
  machine: machineInfo({
    load: os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' '),
  }),
  sections,
});
process.exit(0);
