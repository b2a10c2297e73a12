import { listUsers } from '../db/repositories/users-list.js';
import { sql } from 'kysely';
import {
  benchDatabase,
  cpuMsOf,
  freePort,
  loadAverage,
  machineInfo,
  pacedLoad,
  percentile,
  seedCustomers,
  signedDeliveries,
  spawnTs,
  startRedis,
  stopChild,
  waitForHttp,
  writeResults,
} from './lib.js';

/**
 * Time to truth: from the moment a signed delivery is due at the intake to the moment the
 * customer's new state is committed and shown by the console's list query. The production web
 * process and a worker process (as deployed) receive RATE deliveries/s for SECONDS, each a
 * CREATED_KYC for a customer of its own (seeded in LINK_ISSUED). Meanwhile this process runs the
 * users list's own query (db/repositories/users-list.ts listUsers: state IN_PROGRESS, latest change
 * first, 200 per page, with its per-state counts) every POLL_MS, and records when each customer
 * first appears there. A customer seen by a query was committed before that query started, so the
 * query's start is taken as the moment of truth (POLL_MS is the resolution).
 * `--engine postgres`: the same on PostgreSQL (time-to-truth-postgres.{json,md}).
 */
const SECRET = 'bench-webhook-secret';
const PG = process.argv.includes('postgres');
const RATE = Number(process.env.BENCH_TTT_RATE ?? 500);
const SECONDS = Number(process.env.BENCH_TTT_SECONDS ?? 20);
const POLL_MS = Number(process.env.BENCH_TTT_POLL_MS ?? 50);
const N = RATE * SECONDS;

const loadBefore = loadAverage();
const redis = await startRedis();
const bdb = await benchDatabase(PG ? 'postgres' : 'sqlite', 'ttt');
const { db } = bdb;
// The warm-up's customers come first; the measured ones follow.
const WARM = 2000;
await seedCustomers(db, WARM + N + 1000);
const port = await freePort();
const env = {
  DATABASE_URL: bdb.url,
  ...(bdb.schema ? { BENCH_PG_SCHEMA: bdb.schema } : {}),
  REDIS_URL: redis.url,
  QUEUE_PREFIX: 'benchttt',
  CAPA_WEBHOOK_SECRET: SECRET,
  LOG_LEVEL: 'warn',
  NODE_ENV: 'production',
  SESSION_SECRET: 'bench-session-secret-0123456789',
  CAPA_BASE_URL: 'http://127.0.0.1:9',
};
const appName = `kyc-bench-ttt-${process.pid}`;
const worker = spawnTs('jobs/worker.ts', { ...env, PGAPPNAME: appName });
const web = spawnTs('server/web.ts', { ...env, PORT: String(port), PGAPPNAME: appName });
/** CPU ms so far of the web, the worker, Redis and (PostgreSQL) their backends. */
const cpu = async () => {
  const backends = PG
    ? (await sql<{ pid: number }>`select pid from pg_stat_activity where application_name = ${appName}`.execute(db)).rows.map((r) => r.pid)
    : [];
  return {
    web: cpuMsOf(web.pid),
    worker: cpuMsOf(worker.pid),
    redis: cpuMsOf(redis.pid),
    db: backends.reduce((a, p) => a + cpuMsOf(p), 0),
  };
};
const url = `http://127.0.0.1:${port}`;

const sentAt = new Map<string, number>();
const seenAt = new Map<string, number>();
let polls = 0;
let pollMs = 0;
try {
  await waitForHttp(`${url}/healthz`);
  const warmRequest = signedDeliveries(SECRET, (n) => `cust-${n}`);
  await pacedLoad({ url, rate: RATE, seconds: WARM / RATE, request: warmRequest }); // warm-up: customers 1…WARM

  const deliver = signedDeliveries(SECRET, (n) => `cust-${WARM + n}`);
  const request = () => {
    const r = deliver();
    sentAt.set((JSON.parse(r.body) as { externalUserId: string }).externalUserId, performance.now());
    return r;
  };
  let loading = true;
  const poller = (async () => {
    // Until every measured customer is seen, or 30 s after the load ends.
    let until = Infinity;
    while (seenAt.size < N && performance.now() < until) {
      if (!loading && until === Infinity) until = performance.now() + 30_000;
      const round = performance.now();
      // Page on while a whole page is new (the worker committed more than a page since the last look).
      for (let page = 1; page <= 50; page++) {
        const started = performance.now();
        const res = await listUsers(db, { states: ['IN_PROGRESS'], sort: 'kycStateChangedAt', dir: 'desc', pageSize: 200, page });
        polls++;
        pollMs += performance.now() - started;
        let fresh = 0;
        for (const row of res.rows) {
          if (!sentAt.has(row.externalUserId) || seenAt.has(row.externalUserId)) continue;
          seenAt.set(row.externalUserId, started);
          fresh++;
        }
        if (fresh < res.rows.length || res.rows.length < 200) break;
      }
      const wait = POLL_MS - (performance.now() - round);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  const cpu0 = await cpu();
  const intake = await pacedLoad({ url, rate: RATE, seconds: SECONDS, request });
  loading = false;
  await poller;
  const cpu1 = await cpu();
  const perDelivery = (k: keyof typeof cpu0) => (cpu1[k] - cpu0[k]) / N;
  const totalPerDelivery = perDelivery('web') + perDelivery('worker') + perDelivery('redis') + perDelivery('db');

  const times = [...seenAt.entries()].map(([id, at]) => at - sentAt.get(id)!).sort((a, b) => a - b);
  const ms = (x: number) => Math.round(x);
  writeResults(PG ? 'time-to-truth-postgres' : 'time-to-truth', {
    machine: machineInfo({ redis: redis.version, 'load average before': loadBefore, engine: PG ? 'PostgreSQL' : 'SQLite' }),
    sections: [
      {
        title: `Webhook due → state shown by the users list query, ${RATE} deliveries/s for ${SECONDS} s (${PG ? 'PostgreSQL' : 'SQLite'})`,
        rows: [
          {
            deliveries: N,
            'seen in the list': times.length,
            'never seen (30 s after the load)': N - times.length,
            'p50 (ms)': ms(percentile(times, 50)),
            'p95 (ms)': ms(percentile(times, 95)),
            'p99 (ms)': ms(percentile(times, 99)),
            'max (ms)': ms(times.at(-1) ?? NaN),
            'intake achieved req/s': intake.achieved,
            'intake p99 (ms)': intake.p99,
            'list queries': polls,
            'list query mean (ms)': (pollMs / Math.max(1, polls)).toFixed(1),
          },
        ],
        notes: [
          'target: p99 ≤ 500 ms',
          `web process + one worker process; the list query (listUsers, as /users?state=IN_PROGRESS&sort=kycStateChangedAt runs it, 200 per page, paging on while a page is all new) every ${POLL_MS} ms from this process, so times are resolved to about ${POLL_MS} ms`,
          'time from the moment each delivery was due (open-loop load) to the start of the first list query that showed its customer IN_PROGRESS',
        ],
      },
      {
        title: 'CPU per delivery (ms), from the start of the load until every customer was seen',
        rows: [
          {
            web: perDelivery('web').toFixed(3),
            worker: perDelivery('worker').toFixed(3),
            Redis: perDelivery('redis').toFixed(3),
            ...(PG ? { 'PostgreSQL backends': perDelivery('db').toFixed(3) } : {}),
            total: totalPerDelivery.toFixed(3),
            [`cores busy at ${RATE}/s`]: ((totalPerDelivery * RATE) / 1000).toFixed(2),
          },
        ],
        notes: [
          'the CPU a delivery costs end to end changes little with the load average; the list queries of this process are not included',
        ],
      },
    ],
  });
} finally {
  await stopChild(web);
  await stopChild(worker);
  await bdb.close();
  redis.stop();
}
