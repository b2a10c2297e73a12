import os from 'node:os';
import Database from 'better-sqlite3';
import { createDb, migrateToLatest } from '../db/client.js';
import { Queues } from '../jobs/queues.js';
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
 * Webhook intake while Redis misbehaves: an evenly paced load of signed deliveries against the
 * production web process (bench/checkpointer.ts beside it stands in for a worker's checkpoints), through
 * four phases — Redis up; Redis frozen (SIGSTOP: its connection stays open, every command waits);
 * just after SIGCONT; Redis gone (stopped). The intake's promise is "stored, then answered": the
 * enqueue must not hold the answer, so p99 should stay well under 100 ms in every phase.
 * Also counts, for the frozen phase, how many deliveries the intake still added to Redis itself
 * (late, after SIGCONT) and how many it left to the relay.
 */
const SECRET = 'bench-webhook-secret';
const RATE = Number(process.env.BENCH_FROZEN_RATE ?? 500);
const FROZEN_SECONDS = Number(process.env.BENCH_FROZEN_SECONDS ?? 10);
const PREFIX = 'benchfrozen';

const redis = await startRedis();
const dbUrl = tempSqliteUrl('frozen');
const db = createDb(dbUrl);
await migrateToLatest(db);
await db.destroy();
const checkpointer = spawnTs('bench/checkpointer.ts', { DATABASE_URL: dbUrl, LOG_LEVEL: 'warn' });
const port = await freePort();
const web = spawnTs('server/web.ts', {
  REDIS_URL: redis.url,
  CAPA_WEBHOOK_SECRET: SECRET,
  QUEUE_PREFIX: PREFIX,
  LOG_LEVEL: 'warn',
  NODE_ENV: 'production',
  SESSION_SECRET: 'bench-session-secret-0123456789',
  CAPA_BASE_URL: 'http://127.0.0.1:9',
  PORT: String(port),
  DATABASE_URL: dbUrl,
});
const url = `http://127.0.0.1:${port}`;
const sqlite = new Database(dbUrl.replace(/^file:/, ''), { readonly: true });
const lastId = () => (sqlite.prepare('select coalesce(max(id), 0) as id from webhook_inbox').get() as { id: number }).id;

const rows: Array<Record<string, string | number>> = [];
const notes: string[] = [];
try {
  await waitForHttp(`${url}/healthz`);
  const request = signedDeliveries(SECRET);
  await pacedLoad({ url, rate: RATE, seconds: 3, request }); // warm-up

  const phase = async (name: string, seconds: number) => {
    const r = await pacedLoad({ url, rate: RATE, seconds, request });
    const [load1] = os.loadavg();
    rows.push({ phase: name, ...r, 'load average (1 min)': load1!.toFixed(2) });
    console.log(`${name}: p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.non2xx} non-2xx`);
  };

  await phase('Redis up', 5);

  const frozenFrom = lastId() + 1;
  redis.signal('SIGSTOP');
  try {
    await phase(`Redis frozen (SIGSTOP, ${FROZEN_SECONDS} s)`, FROZEN_SECONDS);
  } finally {
    redis.signal('SIGCONT');
  }
  const frozenTo = lastId();

  await phase('just after SIGCONT', 5);

  // Which frozen-phase deliveries reached Redis by the intake's own add (sent before the freeze
  // was noticed, and taken once Redis ran again) — the others wait for the relay (no worker here).
  const queues = new Queues({ redis: redis.url, prefix: PREFIX });
  const ids = Array.from({ length: frozenTo - frozenFrom + 1 }, (_, i) => `wh-${frozenFrom + i}`);
  let direct = 0;
  for (let i = 0; i < ids.length; i += 1000)
    direct += (await queues.jobPresence('webhooks', ids.slice(i, i + 1000))).filter((p) => p !== 'missing').length;
  await queues.close();
  notes.push(
    `frozen phase: ${ids.length} deliveries stored and answered; ${direct} added to Redis by the intake itself (late, after SIGCONT), ${ids.length - direct} left to the relay (bounded: an add is skipped while the oldest one in flight has waited > 500 ms)`,
  );

  redis.stop();
  await new Promise((r) => setTimeout(r, 500));
  await phase('Redis gone (stopped)', 10);
} finally {
  sqlite.close();
  await stopChild(web);
  await stopChild(checkpointer);
  redis.stop();
}

writeResults('ingest-redis-frozen', {
  machine: machineInfo({ redis: redis.version }),
  sections: [
    {
      title: `Intake latency at ${RATE} req/s while Redis is up, frozen and gone`,
      rows,
      notes: [
        ...notes,
        'target: p99 < 100 ms in every phase (before: every delivery waited for the ~2 s Redis command timeout while Redis was frozen)',
        'latency measured from when each request was due (open loop, no coordinated omission); load generator on the same 2 cores',
      ],
    },
  ],
});
