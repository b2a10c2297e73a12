import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { createDb, migrateToLatest } from '../db/client.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuMsOf, loadAverage, machineInfo, spawnTs, startRedis, stopChild, tempSqliteUrl, writeResults } from './lib.js';

/**
 * Webhook processing: N queued deliveries (default 100k) drained by one worker process
 * (jobs/worker.ts, production settings). Each delivery is a CREATED_KYC for a distinct customer,
 * so every job runs the full path: load the delivery, find the customer, apply the state machine,
 * record the change, settle the delivery.
 * `--engine postgres`: the same on PostgreSQL (a private schema in BENCH_POSTGRES_URL, dropped
 * after), written to processing-postgres.{json,md}.
 */
const N = Number(process.env.BENCH_PROCESSING_N ?? 100_000);
const PG = process.argv.includes('postgres');
const pgSchema = PG ? `bench_${randomBytes(5).toString('hex')}` : undefined;
const pgBase = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// The worker process gets the schema through the URL (libpq `options`), as a deployment could.
const url = PG
  ? `${pgBase}${pgBase.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${pgSchema}`)}`
  : tempSqliteUrl('processing');
const redis = await startRedis();
const db = createDb(url, pgSchema ? { schema: pgSchema } : {});
try {
  await migrateToLatest(db, pgSchema ? { schema: pgSchema } : undefined);
  const now = new Date().toISOString();
  const seedStart = performance.now();
  const CHUNK = 500;
  for (let i = 0; i < N; i += CHUNK) {
    const n = Math.min(CHUNK, N - i);
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('users')
        .values(
          Array.from({ length: n }, (_, k) => ({
            id: randomUUID(),
            externalUserId: `bench-${i + k}`,
            capaUserId: randomUUID(),
            type: 'INDIVIDUAL' as const,
            email: `bench-${i + k}@example.mx`,
            alias: null,
            country: 'MX' as const,
            kycState: 'LINK_ISSUED' as const,
            kycStateChangedAt: now,
            kycStateReason: null,
            kycStateCause: null,
            capaConfirmedAt: now,
            capaSync: 'created' as const,
            capaSyncError: null,
            unmappedResult: null,
            assigneeId: null,
            createdBy: null,
            createdAt: now,
            updatedAt: now,
          })),
        )
        .execute();
      await trx
        .insertInto('webhookInbox')
        .values(
          Array.from({ length: n }, (_, k) => ({
            receivedAt: now,
            rawBody: JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: `bench-${i + k}` }),
            headers: '{}',
            signatureVerdict: 'valid' as const,
            secretIndex: 0,
            eventType: 'KYC',
            eventName: 'CREATED_KYC',
            externalUserId: `bench-${i + k}`,
            dedupeKey: null,
            duplicateOf: null,
            status: 'received' as const,
            enqueuedAt: now,
          })),
        )
        .execute();
    });
  }
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const q = new Queue('webhooks', { connection: conn, prefix: 'bench' });
  const ids = (await db.selectFrom('webhookInbox').select('id').orderBy('id').execute()).map((r) => r.id);
  for (let i = 0; i < ids.length; i += 1000) {
    await q.addBulk(
      ids.slice(i, i + 1000).map((id) => ({
        name: 'process-webhook',
        data: { inboxId: id },
        opts: {
          jobId: `wh-${id}`,
          attempts: 8,
          backoff: { type: 'exponential', delay: 500 },
          removeOnComplete: { age: 3600, count: 10_000 },
        },
      })),
    );
  }
  const seedSeconds = (performance.now() - seedStart) / 1000;

  const loadBefore = loadAverage();
  // The worker's PostgreSQL sessions carry this name, so their backends' CPU can be read.
  const appName = `kyc-bench-worker-${process.pid}`;
  const probeFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'kyc-bench-probe-')), 'probe.json');
  const t0 = performance.now();
  const worker = spawnTs(
    'jobs/worker.ts',
    {
      DATABASE_URL: url,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: 'bench',
      NODE_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(32),
      LOG_LEVEL: 'warn',
      CAPA_BASE_URL: 'http://127.0.0.1:9',
      PGAPPNAME: appName,
    },
    { probe: PG ? probeFile : undefined },
  );
  const backendPids = async (): Promise<number[]> =>
    PG
      ? (await sql<{ pid: number }>`select pid from pg_stat_activity where application_name = ${appName}`.execute(db)).rows.map(
          (r) => r.pid,
        )
      : [];
  const cpu = async () => {
    const pids = await backendPids();
    return { worker: cpuMsOf(worker.pid), redis: cpuMsOf(redis.pid), db: pids.reduce((a, p) => a + cpuMsOf(p), 0) };
  };
  let done = 0;
  let doneAtFirst = 0;
  let firstAt = 0;
  let cpuAtFirst = { worker: 0, redis: 0, db: 0 };
  const deadline = Date.now() + 30 * 60_000;
  while (Date.now() < deadline) {
    const r = await sql<{ n: number }>`select count(*) as n from webhook_inbox where status <> 'received'`.execute(db);
    done = Number(r.rows[0].n);
    if (done > 0 && !firstAt) {
      firstAt = performance.now();
      doneAtFirst = done;
      cpuAtFirst = await cpu();
    }
    if (done >= N) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  const end = performance.now();
  const cpuAtEnd = await cpu();
  await stopChild(worker);
  const perJob = (k: keyof typeof cpuAtEnd) => ((cpuAtEnd[k] - cpuAtFirst[k]) / Math.max(1, done - doneAtFirst)).toFixed(3);
  let roundTrips: { total: number; byStatement: Record<string, number> } | undefined;
  try {
    roundTrips = JSON.parse(readFileSync(probeFile, 'utf8'));
  } catch {
    roundTrips = undefined;
  }
  const failed = Number((await sql<{ n: number }>`select count(*) as n from webhook_inbox where status = 'failed'`.execute(db)).rows[0].n);
  const inProgress = Number(
    (await sql<{ n: number }>`select count(*) as n from users where kyc_state = 'IN_PROGRESS'`.execute(db)).rows[0].n,
  );
  const total = (end - t0) / 1000;
  const steady = firstAt ? (end - firstAt) / 1000 : NaN;
  await q.close();
  conn.disconnect();
  const engine = PG
    ? `PostgreSQL ${(await sql<{ v: string }>`select current_setting('server_version') as v`.execute(db)).rows[0]!.v}`
    : 'SQLite WAL';
  writeResults(PG ? 'processing-postgres' : 'processing', {
    machine: machineInfo({ redis: redis.version }),
    sections: [
      {
        title: `Webhook processing (one worker process, ${engine})`,
        rows: [
          {
            deliveries: N,
            processed: done,
            failed,
            'customers now IN_PROGRESS': inProgress,
            'seconds incl. worker start': total.toFixed(1),
            'jobs/s incl. start': Math.round(done / total),
            'jobs/s after first job': Math.round((done - doneAtFirst) / steady),
            'worker CPU ms/job': perJob('worker'),
            ...(PG ? { 'PostgreSQL CPU ms/job': perJob('db') } : {}),
            'Redis CPU ms/job': perJob('redis'),
            ...(roundTrips ? { 'PostgreSQL round trips/job': (roundTrips.total / N).toFixed(2) } : {}),
          },
        ],
        notes: [
          `load average before the run ${loadBefore}, after ${loadAverage()} (1 / 5 / 15 min; 2 cores shared with other work)`,
          'CPU ms/job: CPU time each process used from the first processed delivery to the last, per delivery (read from /proc)',
          ...(roundTrips
            ? [
                `round trips counted in the worker (bench/probe.ts), start-up included; by statement: ${Object.entries(
                  roundTrips.byStatement,
                )
                  .filter(([, n]) => n >= N / 10)
                  .map(([k, n]) => `\`${k}\` ${(n / N).toFixed(2)}`)
                  .join(', ')}`,
              ]
            : []),
          `seeding ${N} customers + deliveries + jobs took ${seedSeconds.toFixed(1)} s (not measured)`,
          'target ≥ 1,500 jobs/s',
          PG
            ? `WEBHOOK_CONCURRENCY ${process.env.WEBHOOK_CONCURRENCY ?? 'default (128)'}: deliveries in flight read, applied and settled in batches of up to 64 (one transaction each), pool of 10 connections`
            : `WEBHOOK_CONCURRENCY ${process.env.WEBHOOK_CONCURRENCY ?? 'default (128)'}: deliveries in flight read, applied and settled in batches of up to 64; SQLite WAL`,
        ],
      },
    ],
  });
} finally {
  if (pgSchema) await db.withoutPlugins().schema.dropSchema(pgSchema).cascade().execute();
  await db.destroy();
  redis.stop();
}
