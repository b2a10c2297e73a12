import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { CapaClient } from '../capa/client.js';
import { createSandbox, type KycOutcome } from '../capa/sandbox/server.js';
import { createDb, migrateToLatest } from '../db/client.js';
import { runProgress } from '../db/repositories/refresh.js';
import type { NewUser } from '../db/schema.js';
import { machineInfo, spawnTs, startRedis, stopChild, tempSqliteUrl, writeResults } from './lib.js';

/**
 * Stale-status refresh at scale: N stale customers, a Capa sandbox that allows R calls/s (token
 * bucket, 429 + Retry-After beyond it) and one worker process (jobs/worker.ts, production code)
 * configured with CAPA_RATE_LIMIT_PER_SEC = R. The worker's refresh schedule fires on start and
 * the scan hands every stale customer to the capa queue.
 *
 * Reported: scheduling time (scan start → last job queued), elapsed (first job queued → last
 * customer answered) against the floor N/R, and the share of Capa calls answered 429.
 * Goal: elapsed ≤ 1.03 × N/R with ≤ 1 % 429s.
 *
 *   npx tsx bench/refresh.ts            (BENCH_N=10000 BENCH_RATES=100,200)
 */
const N = Number(process.env.BENCH_N ?? 10_000);
const RATES = (process.env.BENCH_RATES ?? '100,200').split(',').map(Number);
const API_KEY = 'bench-partner-key';

async function seed(url: string, n: number) {
  const sandbox = await createSandbox({
    partners: [{ apiKey: API_KEY, webhookSecret: 'bench-webhook-secret', webhookUrl: null }],
    seed: 7,
  });
  const capa = new CapaClient({ baseUrl: sandbox.url, apiKey: API_KEY, timeoutMs: 10_000 });
  const db = createDb(url);
  await migrateToLatest(db);
  const old = new Date(Date.now() - 2 * 86_400_000).toISOString();
  // Capa-side customers (HTTP, before any limit is set) and ours, all stale.
  const outcomes: Array<KycOutcome | null> = ['VERIFIED', 'REVIEW_NEEDED', 'PENDING', null];
  for (let i = 0; i < n; i += 200) {
    const batch = Array.from({ length: Math.min(200, n - i) }, (_, k) => i + k);
    const created = await Promise.all(
      batch.map((k) => capa.createUser({ type: 'INDIVIDUAL', email: `bench-${k}@example.mx`, externalUserId: `bench-${k}` })),
    );
    const rows: NewUser[] = batch.map((k, j) => ({
      id: randomUUID(),
      externalUserId: `bench-${k}`,
      capaUserId: created[j]!.userId,
      type: 'INDIVIDUAL',
      email: `bench-${k}@example.mx`,
      alias: null,
      country: 'MX',
      kycState: k % 3 === 0 ? 'IN_PROGRESS' : 'LINK_ISSUED',
      kycStateChangedAt: old,
      kycStateReason: 'seeded',
      kycStateCause: null,
      capaConfirmedAt: old,
      capaSync: 'created',
      capaSyncError: null,
      unmappedResult: null,
      assigneeId: null,
      createdBy: null,
      createdAt: old,
      updatedAt: old,
    }));
    await db.insertInto('users').values(rows).execute();
    // Capa knows an outcome for most (no REJECTED: its re-invite would add link calls to the measure).
    batch.forEach((k, j) => {
      const o = outcomes[k % outcomes.length];
      if (o) sandbox.setOutcome(created[j]!.userId, o);
    });
  }
  return { sandbox, db };
}

async function runAt(rate: number, redisUrl: string) {
  const url = tempSqliteUrl(`refresh-${rate}`);
  const prefix = `bench-refresh-${rate}`;
  const t0 = Date.now();
  const { sandbox, db } = await seed(url, N);
  const seedMs = Date.now() - t0;
  sandbox.setFaults({ rateLimitPerSec: rate });
  const before = sandbox.stats();
  const detailsCalls = (s: typeof before) => Object.values(s.apiCalls.byOp.getKycDetails ?? {}).reduce((a, b) => a + b, 0);

  const worker = spawnTs('jobs/worker.ts', {
    NODE_ENV: 'development',
    DATABASE_URL: url,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    REDIS_AUTOSTART: 'false',
    CAPA_BASE_URL: sandbox.url,
    CAPA_API_KEY: API_KEY,
    CAPA_RATE_LIMIT_PER_SEC: String(rate),
    REFRESH_STALE_LINK_ISSUED_MINUTES: '0',
    REFRESH_STALE_IN_PROGRESS_MINUTES: '0',
    REFRESH_STALE_REVIEW_NEEDED_MINUTES: '0',
    REFRESH_MAX_PER_SCAN: String(N),
    // The schedule's first iteration runs when the worker starts; no second one during the bench.
    REFRESH_SCAN_EVERY_SECONDS: '86400',
    WORKER_CONCURRENCY: '16',
    SANDBOX_SMTP_PORT: 'off',
    LOG_LEVEL: 'warn',
  });
  const floorS = N / rate;
  try {
    const deadline = Date.now() + (floorS * 3 + 120) * 1000;
    let run;
    for (;;) {
      if (Date.now() > deadline) {
        const jobs = await db
          .selectFrom('jobRuns')
          .select(['jobName', 'status', (eb) => eb.fn.countAll().as('n')])
          .groupBy(['jobName', 'status'])
          .execute();
        const runs = await db.selectFrom('refreshRuns').selectAll().execute();
        throw new Error(`rate ${rate}: the refresh did not finish in time; job runs ${JSON.stringify(jobs)}; runs ${JSON.stringify(runs)}`);
      }
      if (worker.exitCode !== null) throw new Error(`worker exited with ${worker.exitCode}`);
      run = await db.selectFrom('refreshRuns').selectAll().where('kind', '=', 'scheduled').executeTakeFirst();
      if (run?.status === 'done') break;
      if (run?.startedAt && run.status === 'running' && (await runProgress(db, run)).settled) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const scan = await db.selectFrom('jobRuns').selectAll().where('jobName', '=', 'refresh-scan').orderBy('id').executeTakeFirstOrThrow();
    const last = await db
      .selectFrom('refreshRunUsers as ru')
      .innerJoin('users as u', 'u.id', 'ru.userId')
      .select((eb) => [eb.fn.max('u.capaConfirmedAt').as('last'), eb.fn.min('u.capaConfirmedAt').as('first')])
      .where('ru.runId', '=', run!.id)
      .executeTakeFirstOrThrow();
    const failed = await db
      .selectFrom('jobRuns')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('jobName', '=', 'fetch-details')
      .where('status', '=', 'failed')
      .executeTakeFirst();
    const paused = await db
      .selectFrom('jobRuns')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('jobName', '=', 'fetch-details')
      .where('error', 'like', 'rate-limited%')
      .executeTakeFirst();
    const drift = await db
      .selectFrom('driftEvents')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    const after = sandbox.stats();
    const calls = detailsCalls(after) - detailsCalls(before);
    const sent429 = after.sent429 - before.sent429;
    const started = Date.parse(run!.startedAt!);
    const elapsedS = (Date.parse(String(last.last)) - started) / 1000;
    const schedulingMs = Date.parse(run!.enqueuedAt!) - Date.parse(scan.startedAt);
    return {
      R: rate,
      N,
      'seed (s)': (seedMs / 1000).toFixed(1),
      'scheduling (ms)': schedulingMs,
      'elapsed (s)': elapsedS.toFixed(2),
      'floor N/R (s)': floorS.toFixed(2),
      'elapsed / floor': (elapsedS / floorS).toFixed(3),
      'Capa calls': calls,
      '429s': sent429,
      '429 share': `${((100 * sent429) / Math.max(1, calls)).toFixed(2)} %`,
      'queue pauses': Number(paused?.n ?? 0),
      'failed fetches': Number(failed?.n ?? 0),
      answered: run!.total,
      'drift entries': Number(drift?.n ?? 0),
      goal: elapsedS <= 1.03 * floorS && sent429 <= 0.01 * calls ? 'met' : 'missed',
    };
  } finally {
    await stopChild(worker);
    await sandbox.close();
    await db.destroy();
    const conn = new Redis(redisUrl);
    const q = new Queue('capa', { connection: conn, prefix });
    await q.obliterate({ force: true }).catch(() => {});
    await q.close();
    conn.disconnect();
  }
}

const redis = await startRedis();
const rows = [];
try {
  for (const r of RATES) {
    console.log(`refresh bench: N=${N} at R=${r}/s …`);
    rows.push(await runAt(r, redis.url));
    console.log(rows.at(-1));
  }
} finally {
  redis.stop();
}
writeResults('refresh', {
  machine: machineInfo({ redis: redis.version, N: String(N) }),
  sections: [
    {
      title: `Refresh of ${N} stale customers at a Capa limit of R calls/s (SQLite, one worker process)`,
      rows,
      notes: [
        'scheduling: the scheduled scan from its start (stale query, run rows, every fetch-details job queued with priority 10) to the last add.',
        'elapsed: from the run start (before the first add) to the last customer answered (users.capa_confirmed_at), against the floor N/R.',
        'The sandbox enforces R with a token bucket (burst R) and answers 429 with Retry-After beyond it; the worker’s shared BullMQ limiter is set to R.',
        'Goal: elapsed ≤ 1.03 × N/R with ≤ 1 % 429s.',
      ],
    },
  ],
});
process.exit(0);
