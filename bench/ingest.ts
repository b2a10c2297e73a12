import autocannon from 'autocannon';
import { createDb, migrateToLatest } from '../db/client.js';
import {
  freePort,
  machineInfo,
  pacedLoad,
  signedDeliveries,
  spawnTs,
  startRedis,
  stopChild,
  tempSqliteUrl,
  waitForHttp,
  writeResults,
} from './lib.js';

/**
 * Webhook ingest: signed ~1 KB deliveries against the production build (NODE_ENV=production)
 * and, in the same run, the bare reference receiver (bench/bare-receiver.ts). Reports the max
 * sustained rate with p99 ≤ 50 ms, p50/p99 at 50 req/s, and our figure as a ratio to the bare one.
 */
const SECRET = 'bench-webhook-secret';
const PHASE_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 5);
const RATES = (process.env.BENCH_RATES ?? '250,500,1000,1250,1500,1750,2000,2500,3000').split(',').map(Number);

const signedDelivery = signedDeliveries(SECRET);

function request() {
  return {
    method: 'POST' as const,
    path: '/webhooks/capa',
    setupRequest: (req: Record<string, unknown>) => {
      const { body, headers } = signedDelivery();
      return { ...req, body, headers };
    },
  };
}

async function load(url: string, rate: number | undefined, seconds: number) {
  if (rate) return pacedLoad({ url, rate, seconds, request: signedDelivery });
  const r = await autocannon({
    url,
    connections: rate && rate <= 100 ? 5 : 64,
    duration: seconds,
    ...(rate ? { overallRate: rate } : {}),
    requests: [request()] as never,
  });
  const ok = r['2xx'];
  return {
    target: rate ?? 'max',
    achieved: Math.round(ok / seconds),
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
}

type Row = Awaited<ReturnType<typeof load>> & { 'p99 of each run'?: string };

/**
 * Each paced phase runs REPEATS times and reports the median run (by p99): the two cores are
 * shared with whatever else the machine does, and one stall elsewhere should not decide a rate.
 * Every run's p99 is shown beside it.
 */
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
async function repeated(url: string, rate: number): Promise<Row> {
  const runs: Row[] = [];
  for (let i = 0; i < REPEATS; i++) runs.push(await load(url, rate, PHASE_SECONDS));
  const byP99 = [...runs].sort((a, b) => a.p99 - b.p99);
  return { ...byP99[Math.floor((byP99.length - 1) / 2)]!, 'p99 of each run': runs.map((r) => r.p99).join(' / ') };
}

async function measure(name: string, file: string, env: Record<string, string>, migrate: string) {
  const db = createDb(migrate);
  await migrateToLatest(db);
  await db.destroy();
  // As in a deployment, where the worker process checkpoints the WAL every second (db/client.ts,
  // docs/decisions/003): without it our web process would run large checkpoints on its own event
  // loop. The same checkpointer (bench/checkpointer.ts) runs beside both receivers.
  const checkpointer = spawnTs('bench/checkpointer.ts', { DATABASE_URL: migrate, LOG_LEVEL: 'warn' });
  const port = await freePort();
  const child = spawnTs(file, { ...env, PORT: String(port), DATABASE_URL: migrate });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/healthz`).catch(() => waitForHttp(`${url}/`));
    await load(url, undefined, 2); // warm-up
    const at50 = await repeated(url, 50);
    const ramp: Row[] = [];
    for (const rate of RATES) {
      const row = await repeated(url, rate);
      ramp.push(row);
      if (row.p99 > 500 || row.achieved < rate * 0.9) break; // saturated: stop climbing
    }
    const unbounded = await load(url, undefined, PHASE_SECONDS);
    // Sustained: the highest offered (open-loop) rate at which every request got a 2xx and p99
    // stayed ≤ 50 ms. `achieved` divides by the phase plus its last answers' latency, so a fully
    // served 1,500/s phase shows as 1,498 there.
    const sustained = ramp
      .filter((r) => r.p99 <= 50 && r.errors === 0 && r.non2xx === 0 && r.achieved >= Number(r.target) * 0.95)
      .map((r) => Number(r.target));
    return { name, at50, ramp, unbounded, maxSustained: sustained.length ? Math.max(...sustained) : 0 };
  } finally {
    await stopChild(child);
    await stopChild(checkpointer);
  }
}

const redis = await startRedis();
try {
  const common = { REDIS_URL: redis.url, CAPA_WEBHOOK_SECRET: SECRET, QUEUE_PREFIX: 'bench', LOG_LEVEL: 'warn' };
  const ours = await measure(
    'KYC Desk (production build)',
    'server/web.ts',
    { ...common, NODE_ENV: 'production', SESSION_SECRET: 'bench-session-secret-0123456789', CAPA_BASE_URL: 'http://127.0.0.1:9' },
    tempSqliteUrl('ours'),
  );
  const bare = await measure('bare reference (node:http)', 'bench/bare-receiver.ts', common, tempSqliteUrl('bare'));
  const ratio = bare.maxSustained ? ours.maxSustained / bare.maxSustained : NaN;
  const summary = [ours, bare].map((m) => ({
    receiver: m.name,
    'max sustained req/s (offered, all 2xx, p99 ≤ 50 ms)': m.maxSustained,
    'p50 @50 req/s (ms)': m.at50.p50,
    'p99 @50 req/s (ms)': m.at50.p99,
    'unbounded req/s': m.unbounded.achieved,
    'unbounded p99 (ms)': m.unbounded.p99,
  }));
  writeResults('ingest', {
    machine: machineInfo({ redis: redis.version }),
    sections: [
      {
        title: 'Summary',
        rows: summary,
        notes: [
          `ours / bare = ${ratio.toFixed(2)} (target ≥ 0.6)`,
          'targets: ≥ 1,500 req/s at p99 ≤ 50 ms',
          `phases of ${PHASE_SECONDS} s, each run ${REPEATS}× (the median run by p99 is shown); load generator on the same 2 cores`,
        ],
      },
      { title: 'Ramp — KYC Desk', rows: ours.ramp },
      { title: 'Ramp — bare reference', rows: bare.ramp },
    ],
  });
} finally {
  redis.stop();
}
