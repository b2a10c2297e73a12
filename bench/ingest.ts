import autocannon from 'autocannon';
import { sql } from 'kysely';
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import {
  benchDatabase,
  cpuMsOf,
  freePort,
  loadAverage,
  machineInfo,
  pacedLoad,
  seedCustomers,
  signedDeliveries,
  spawnTs,
  startRedis,
  stopChild,
  waitForHttp,
  writeResults,
} from './lib.js';

/**
 * Webhook ingest the way KYC Desk is deployed: the production web process (server/web.ts) answers
 * signed ~1 KB deliveries while a worker process (jobs/worker.ts) drains them — each one a
 * CREATED_KYC for a customer of its own (seeded in LINK_ISSUED), so the worker moves every
 * customer to IN_PROGRESS and both processes write the same database all along. The same load runs
 * against the reference (bench/reference-receiver.ts + bench/reference-consumer.ts: plain
 * node:http and a plain BullMQ worker doing the same durable work). Reports the highest offered
 * rate fully served at p99 ≤ 50 ms, and ours as a ratio of the reference's.
 * `--engine postgres`: the same on PostgreSQL, written to ingest-postgres.{json,md}.
 */
const SECRET = 'bench-webhook-secret';
const PG = process.argv.includes('postgres');
const PHASE_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 5);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const RATES = (process.env.BENCH_RATES ?? '500,1000,1500,2000,2500,3000,3500,4000').split(',').map(Number);
const DRAIN_WAIT_MS = Number(process.env.BENCH_DRAIN_WAIT_MS ?? 30_000);
// Every delivery addresses a customer of its own: enough customers for the whole ramp.
const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? RATES.reduce((n, r) => n + r, 50) * PHASE_SECONDS * REPEATS + 100_000);

interface Receiver {
  name: string;
  web: { file: string; env: Record<string, string> };
  consumer: { file: string; env: Record<string, string> };
}

type Row = Record<string, string | number>;

async function measure(r: Receiver, redis: Awaited<ReturnType<typeof startRedis>>) {
  const bdb = await benchDatabase(PG ? 'postgres' : 'sqlite', `ingest_${r.name.split(' ')[0]}`);
  const { db } = bdb;
  const seed0 = Date.now();
  await seedCustomers(db, CUSTOMERS);
  console.log(`${r.name}: seeded ${CUSTOMERS} customers in ${((Date.now() - seed0) / 1000).toFixed(1)} s`);
  const appName = `kyc-bench-ingest-${process.pid}`;
  const port = await freePort();
  const common = {
    DATABASE_URL: bdb.url,
    ...(bdb.schema ? { BENCH_PG_SCHEMA: bdb.schema } : {}),
    REDIS_URL: redis.url,
    QUEUE_PREFIX: `bench${port}`,
    CAPA_WEBHOOK_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    SESSION_SECRET: 'bench-session-secret-0123456789',
    CAPA_BASE_URL: 'http://127.0.0.1:9',
  };
  const consumer = spawnTs(r.consumer.file, { ...common, ...r.consumer.env, PGAPPNAME: `${appName}-consumer` });
  const web = spawnTs(r.web.file, { ...common, ...r.web.env, PORT: String(port), PGAPPNAME: `${appName}-web` });
  // Our worker lowers its own priority (WORKER_NICE, default 10); the reference's consumer gets the same.
  if (r.consumer.file !== 'jobs/worker.ts') os.setPriority(consumer.pid!, Number(process.env.WORKER_NICE ?? 10));
  const url = `http://127.0.0.1:${port}`;
  const request = signedDeliveries(SECRET, (n) => `cust-${n}`);
  const backlog = async () =>
    Number(
      (await sql<{ n: number }>`select count(*) as n from webhook_inbox where status = 'received'`.execute(db.withoutPlugins())).rows[0]!.n,
    );
  const backends = async () =>
    PG
      ? (await sql<{ pid: number }>`select pid from pg_stat_activity where application_name like ${`${appName}-%`}`.execute(db)).rows.map(
          (x) => x.pid,
        )
      : [];
  const cpu = async (procs: ChildProcess[]) => {
    const pids = await backends();
    return [...procs.map((p) => cpuMsOf(p.pid)), cpuMsOf(redis.pid), pids.reduce((a, p) => a + cpuMsOf(p), 0)];
  };
  const drained = async (): Promise<number> => {
    const t0 = Date.now();
    while (Date.now() - t0 < DRAIN_WAIT_MS) {
      if ((await backlog()) === 0) return (Date.now() - t0) / 1000;
      await new Promise((res) => setTimeout(res, 200));
    }
    return NaN;
  };

  async function run(rate: number): Promise<Row> {
    const c0 = await cpu([web, consumer]);
    const t0 = performance.now();
    const res = await pacedLoad({ url, rate, seconds: PHASE_SECONDS, request });
    const left = await backlog();
    const c1 = await cpu([web, consumer]);
    const seconds = (performance.now() - t0) / 1000;
    const pct = (i: number) => Math.round((c1[i]! - c0[i]!) / seconds / 10);
    const drainSeconds = await drained();
    return {
      ...res,
      'receiver CPU %': pct(0),
      'consumer CPU %': pct(1),
      'Redis CPU %': pct(2),
      ...(PG ? { 'PostgreSQL CPU %': pct(3) } : {}),
      'backlog at end': left,
      'drained in s': Number.isNaN(drainSeconds) ? `> ${DRAIN_WAIT_MS / 1000}` : drainSeconds.toFixed(1),
    };
  }

  /** Each paced phase runs REPEATS times; the median run by p99 is reported, every run's p99 beside it. */
  async function repeated(rate: number): Promise<Row> {
    const runs: Row[] = [];
    for (let i = 0; i < REPEATS; i++) runs.push(await run(rate));
    const byP99 = [...runs].sort((a, b) => Number(a.p99) - Number(b.p99));
    return { ...byP99[Math.floor((byP99.length - 1) / 2)]!, 'p99 of each run': runs.map((x) => x.p99).join(' / ') };
  }

  try {
    await waitForHttp(`${url}/healthz`);
    // Warm-up: the first seconds after start (JIT, caches, connections) are not what is measured.
    await pacedLoad({ url, rate: 500, seconds: 4, request });
    await drained();
    const at50 = await repeated(50);
    const ramp: Row[] = [];
    for (const rate of RATES) {
      const row = await repeated(rate);
      ramp.push(row);
      console.log(`${r.name} @${rate}: p50 ${row.p50} ms, p99 ${row.p99} ms, achieved ${row.achieved}`);
      if (Number(row.p99) > 500 || Number(row.achieved) < rate * 0.9) break; // saturated: stop climbing
    }
    const unbounded = await autocannon({
      url,
      connections: 64,
      duration: PHASE_SECONDS,
      requests: [
        {
          method: 'POST',
          path: '/webhooks/capa',
          setupRequest: (req: Record<string, unknown>) => {
            const { body, headers } = request();
            return { ...req, body, headers };
          },
        },
      ] as never,
    });
    await drained();
    // Sustained: the highest offered (open-loop) rate at which every request got a 2xx and p99
    // stayed ≤ 50 ms.
    const sustained = ramp
      .filter((x) => Number(x.p99) <= 50 && x.non2xx === 0 && Number(x.achieved) >= Number(x.target) * 0.95)
      .map((x) => Number(x.target));
    const processed = Number(
      (
        await sql<{
          n: number;
        }>`select count(*) as n from users where kyc_state = 'IN_PROGRESS'`.execute(db.withoutPlugins())
      ).rows[0]!.n,
    );
    return {
      name: r.name,
      at50,
      ramp,
      unbounded: { achieved: Math.round(unbounded['2xx'] / PHASE_SECONDS), p99: unbounded.latency.p99 },
      maxSustained: sustained.length ? Math.max(...sustained) : 0,
      processed,
    };
  } finally {
    await stopChild(web);
    await stopChild(consumer);
    await bdb.close();
  }
}

const loadBefore = loadAverage();
const redis = await startRedis();
try {
  const ours = await measure(
    {
      name: 'KYC Desk (web + worker, production build)',
      web: { file: 'server/web.ts', env: {} },
      consumer: { file: 'jobs/worker.ts', env: {} },
    },
    redis,
  );
  const reference = await measure(
    {
      name: 'reference (node:http + BullMQ worker)',
      web: { file: 'bench/reference-receiver.ts', env: {} },
      consumer: { file: 'bench/reference-consumer.ts', env: {} },
    },
    redis,
  );
  const ratio = reference.maxSustained ? ours.maxSustained / reference.maxSustained : NaN;
  const engine = PG ? 'PostgreSQL' : 'SQLite (WAL; web synchronous=FULL, worker NORMAL)';
  writeResults(PG ? 'ingest-postgres' : 'ingest', {
    machine: machineInfo({ redis: redis.version, 'load average before': loadBefore, engine }),
    sections: [
      {
        title: `Summary (${engine})`,
        rows: [ours, reference].map((m) => ({
          receiver: m.name,
          'max sustained req/s (offered, all 2xx, p99 ≤ 50 ms)': m.maxSustained,
          'p50 @50 req/s (ms)': m.at50.p50!,
          'p99 @50 req/s (ms)': m.at50.p99!,
          'unbounded req/s': m.unbounded.achieved,
          'unbounded p99 (ms)': m.unbounded.p99,
          'customers moved to IN_PROGRESS': m.processed,
        })),
        notes: [
          `ours / reference = ${ratio.toFixed(2)} (target ≥ 0.6); target ≥ 2,000 req/s at p99 ≤ 50 ms with the worker draining`,
          `phases of ${PHASE_SECONDS} s, each run ${REPEATS}× (the median run by p99 is shown), open loop, latency from each request's due time; after each run the bench waits for the consumer to drain the backlog (up to ${DRAIN_WAIT_MS / 1000} s)`,
          'CPU %: of one core, during the run (receiver = web process, consumer = worker process; PostgreSQL = their backends); load generator on the same 2 cores',
          'both consumers run at niceness WORKER_NICE (default 10): ours sets it itself at start, the reference gets it from the bench',
        ],
      },
      { title: `Ramp — ${ours.name}`, rows: ours.ramp },
      { title: `Ramp — ${reference.name}`, rows: reference.ramp },
    ],
  });
} finally {
  redis.stop();
}
