import { randomUUID } from 'node:crypto';
import { createDb } from '../db/client.js';
import { insertMessage, insertProgramme } from '../db/repositories/notifications.js';
import { Queues } from '../jobs/queues.js';
import { enqueueSend, runNotificationSweep, type NotifyDeps } from '../jobs/notifications/programme.js';
import { parseEnv } from '../lib/config.js';
import { logger } from '../lib/logger.js';
import {
  benchDatabase,
  cpuMsOf,
  freePort,
  loadAverage,
  machineInfo,
  spawnTs,
  startRedis,
  stopChild,
  waitForHttp,
  writeResults,
} from './lib.js';

/**
 * Notifications: (1) N ledger messages already queued in the `notifications` queue, sent by
 * BENCH_NOTIFY_WORKERS worker processes (default 1, started once they are all queued) to an SMTP
 * sink in a process of its own (bench/smtp-sink.ts), end to end —
 * claim (synced to disk before the message leaves), render, SMTP, settle — with exactly-once
 * checks (every message received once, every row sent, every claim done); (2) one sweep over P
 * programmes whose follow-up is due (ledger rows created and queued).
 * `--engine postgres`: the same on PostgreSQL (notifications-postgres.{json,md}).
 */
const PG = process.argv.includes('postgres');
const N = Number(process.env.BENCH_NOTIFY_N ?? 5000);
const WORKERS = Number(process.env.BENCH_NOTIFY_WORKERS ?? 1);
const P = Number(process.env.BENCH_NOTIFY_PROGRAMMES ?? 2000);
const loadBefore = loadAverage();
const redis = await startRedis();
// The SMTP sink runs in a process of its own (bench/smtp-sink.ts), as a mail server would.
const statsPort = await freePort();
const smtpPort = await freePort();
const sink = spawnTs('bench/smtp-sink.ts', { SINK_STATS_PORT: String(statsPort), SINK_SMTP_PORT: String(smtpPort) });
await waitForHttp(`http://127.0.0.1:${statsPort}/`);
const sinkStats = async () => (await (await fetch(`http://127.0.0.1:${statsPort}/`)).json()) as { received: number; distinct: number };
const bdb = await benchDatabase(PG ? 'postgres' : 'sqlite', 'notifications');
// The worker's own handle, opened as a worker process opens it (SQLite: synchronous=NORMAL;
// what must survive a power cut is synced explicitly).
const db = createDb(bdb.url, { durability: 'normal', ...(bdb.schema ? { schema: bdb.schema } : {}) });
// What this process (which queues the messages) and the worker processes are configured with.
const sharedEnv = {
  NODE_ENV: 'production' as const,
  SESSION_SECRET: 'bench-secret-bench-secret',
  DATABASE_URL: bdb.url,
  REDIS_URL: redis.url,
  QUEUE_PREFIX: 'benchn',
  SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
  CAPA_BASE_URL: 'http://127.0.0.1:9',
  WORKER_CONCURRENCY: process.env.WORKER_CONCURRENCY ?? '8',
};
const env = parseEnv({ ...sharedEnv, LOG_LEVEL: 'silent' });
const queues = new Queues({ redis: redis.url, prefix: 'benchn' });
const deps: NotifyDeps = { db, enqueue: queues, env, logger };
const sections: Parameters<typeof writeResults>[1]['sections'] = [];

try {
  const now = new Date().toISOString();
  const users = Array.from({ length: Math.max(N, P) }, (_, i) => ({
    id: randomUUID(),
    externalUserId: `bn-${i}`,
    capaUserId: randomUUID(),
    type: 'INDIVIDUAL' as const,
    email: `bn-${i}@example.mx`,
    alias: `Cliente ${i}`,
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
  }));
  for (let i = 0; i < users.length; i += 500)
    await db
      .insertInto('users')
      .values(users.slice(i, i + 500))
      .execute();
  const rows = await db.transaction().execute(async (trx) => {
    const out = [];
    for (let i = 0; i < N; i++) {
      const { row } = await insertMessage(trx, {
        userId: users[i]!.id,
        kind: 'kyc_link',
        channel: 'email',
        locale: 'es',
        address: users[i]!.email,
        dedupeKey: `bench:${i}`,
        linkId: null,
        linkUrl: `https://verify.example/s/${i}`,
      });
      out.push(row);
    }
    return out;
  });
  const q0 = performance.now();
  for (let i = 0; i < rows.length; i += 100) await Promise.all(rows.slice(i, i + 100).map((r) => enqueueSend(deps, r)));
  const enqueueMs = performance.now() - q0;

  // The worker processes, as deployed (jobs/worker.ts; each runs every queue, only e-mails wait).
  const workerEnv = { ...sharedEnv, LOG_LEVEL: 'warn' };
  const sinkCpu0 = cpuMsOf(sink.pid);
  const t0 = performance.now();
  const workers = Array.from({ length: WORKERS }, () => spawnTs('jobs/worker.ts', workerEnv));
  let firstAt = 0;
  let sentAtFirst = 0;
  for (;;) {
    const c = await db
      .selectFrom('notifications')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'sent')
      .executeTakeFirstOrThrow();
    if (Number(c.n) > 0 && !firstAt) {
      firstAt = performance.now();
      sentAtFirst = Number(c.n);
    }
    if (Number(c.n) >= N) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const t1 = performance.now();
  // Worker CPU includes its start (loading the code, migrations check): a few hundred ms in all.
  const cpuMs = workers.reduce((a, w) => a + cpuMsOf(w.pid), 0);
  await Promise.all(workers.map((w) => stopChild(w)));
  const { received, distinct } = await sinkStats();
  const claimsDone = Number(
    (
      await db
        .selectFrom('idempotency')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('kind', '=', 'notify-send')
        .where('status', '=', 'done')
        .executeTakeFirstOrThrow()
    ).n,
  );
  sections.push({
    title: `Send ${N} queued e-mails (queue → SMTP → ledger), concurrency ${env.WORKER_CONCURRENCY}, ${PG ? 'PostgreSQL' : 'SQLite'}`,
    rows: [
      {
        messages: N,
        'enqueue ms (before the worker starts)': Math.round(enqueueMs),
        'worker processes': WORKERS,
        'worker start → all sent, ms': Math.round(t1 - t0),
        'messages/s incl. worker start': Math.round(N / ((t1 - t0) / 1000)),
        'messages/s after the first was sent': Math.round((N - sentAtFirst) / ((t1 - firstAt) / 1000)),
        'received by SMTP': received,
        'distinct messages received': distinct,
        'claims done': claimsDone,
        'worker CPU ms/message (start included)': (cpuMs / N).toFixed(3),
        'SMTP sink CPU ms/message': ((cpuMsOf(sink.pid) - sinkCpu0) / N).toFixed(3),
      },
    ],
    notes: [
      `target ≥ 500 messages/s, exactly once (received = distinct = claims done = ${N}); load average before ${loadBefore}, after ${loadAverage()}`,
      PG
        ? 'PostgreSQL (synchronous_commit on), pooled SMTP transport (4 connections per worker).'
        : 'SQLite WAL, worker connections synchronous=NORMAL; the claim before a send is synced to disk in a commit shared by the sends starting then (db/group-commit.ts, durable), the record after it in a shared commit that the next claim syncs. Pooled SMTP transport (4 connections per worker).',
      'Each message: ledger check, customer and link checks, render (text+HTML), claim + attempt in one commit, SMTP DATA, settle + sent in one commit; the SMTP sink (smtp-server) runs in a process of its own.',
    ],
  });

  // Sweep: P programmes all due now, each with a sent step-0 message and an active link.
  for (let i = 0; i < P; i++) {
    const u = users[i]!;
    const { programme } = await insertProgramme(db, { userId: u.id, rejectedAt: `${now}-${i}`, cadenceDays: [1, 3, 7], firstDueAt: now });
    await db
      .insertInto('kycLinks')
      .values({
        id: randomUUID(),
        userId: u.id,
        url: `https://verify.example/p/${i}`,
        country: 'MX',
        redirectUri: null,
        status: 'active',
        createdBy: null,
        createdAt: now,
        endedAt: null,
      })
      .execute();
    const m = await insertMessage(db, {
      userId: u.id,
      kind: 'kyc_retry',
      channel: 'email',
      locale: 'es',
      address: u.email,
      dedupeKey: `p0:${i}`,
      programmeId: programme.id,
      step: 0,
      linkUrl: 'https://verify.example/x',
    });
    await db.updateTable('notifications').set({ status: 'sent' }).where('id', '=', m.row.id).execute();
  }
  const s0 = performance.now();
  const report = await runNotificationSweep(deps, new Date(Date.now() + 86_400_000 + 60_000));
  const s1 = performance.now();
  const again0 = performance.now();
  const again = await runNotificationSweep(deps, new Date(Date.now() + 86_400_000 + 120_000));
  const again1 = performance.now();
  sections.push({
    title: `Sweep over ${P} due programmes`,
    rows: [
      {
        run: 'first (creates and queues follow-ups)',
        'follow-ups': report.followups,
        ms: Math.round(s1 - s0),
        'per programme ms': ((s1 - s0) / P).toFixed(2),
      },
      {
        run: 'second (the next batch)',
        'follow-ups': again.followups,
        ms: Math.round(again1 - again0),
        'per programme ms': ((again1 - again0) / P).toFixed(2),
      },
    ],
    notes: ['The sweep handles at most 500 due programmes per run (one run a minute); the first run here covers the first 500.'],
  });
  writeResults(PG ? 'notifications-postgres' : 'notifications', { machine: machineInfo({ db: PG ? 'postgres' : 'sqlite' }), sections });
} finally {
  await queues.close();
  await stopChild(sink);
  await db.destroy();
  await bdb.close();
  redis.stop();
}
