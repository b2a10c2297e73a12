import { randomUUID } from 'node:crypto';
import { CapaClient } from '../capa/client.js';
import { createDb, migrateToLatest } from '../db/client.js';
import { insertMessage, insertProgramme } from '../db/repositories/notifications.js';
import { Queues } from '../jobs/queues.js';
import { startWorkers } from '../jobs/worker.js';
import { enqueueSend, runNotificationSweep, type NotifyDeps } from '../jobs/notifications/programme.js';
import { startTestSmtp } from '../test/support/smtp.js';
import { parseEnv } from '../lib/config.js';
import { logger } from '../lib/logger.js';
import { machineInfo, startRedis, tempSqliteUrl, writeResults } from './lib.js';

/**
 * Notifications: (1) N ledger messages sent through the `notifications` queue by one in-process
 * worker to a local SMTP server (smtp-server), end to end: claim, render, SMTP, settle; (2) one
 * sweep over P programmes whose follow-up is due (ledger rows created and queued).
 */
const N = Number(process.env.BENCH_NOTIFY_N ?? 1000);
const P = Number(process.env.BENCH_NOTIFY_PROGRAMMES ?? 2000);
const redis = await startRedis();
const smtp = await startTestSmtp();
const url = tempSqliteUrl('notifications');
const db = createDb(url);
await migrateToLatest(db);
const env = parseEnv({
  NODE_ENV: 'production',
  SESSION_SECRET: 'bench-secret-bench-secret',
  DATABASE_URL: url,
  REDIS_URL: redis.url,
  QUEUE_PREFIX: 'benchn',
  SMTP_URL: smtp.url,
  CAPA_BASE_URL: 'http://127.0.0.1:9',
  LOG_LEVEL: 'silent',
  WORKER_CONCURRENCY: process.env.WORKER_CONCURRENCY ?? '8',
});
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
  const rows = [];
  for (let i = 0; i < N; i++) {
    rows.push(
      (
        await insertMessage(db, {
          userId: users[i]!.id,
          kind: 'kyc_link',
          channel: 'email',
          locale: 'es',
          address: users[i]!.email,
          dedupeKey: `bench:${i}`,
          linkId: null,
          linkUrl: `https://verify.example/s/${i}`,
        })
      ).row,
    );
  }
  const running = await startWorkers(
    { env, db, capa: new CapaClient({ baseUrl: env.capaBaseUrl, apiKey: 'x' }), logger, redis: redis.url, prefix: 'benchn' },
    { queues: ['notifications'], schedules: false },
  );
  const t0 = performance.now();
  for (const r of rows) await enqueueSend(deps, r);
  const tq = performance.now();
  for (;;) {
    const c = await db
      .selectFrom('notifications')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'sent')
      .executeTakeFirstOrThrow();
    if (Number(c.n) >= N) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const t1 = performance.now();
  await running.close();
  sections.push({
    title: `Send ${N} e-mails (queue → SMTP → ledger), concurrency ${env.WORKER_CONCURRENCY}`,
    rows: [
      {
        messages: N,
        'enqueue ms': Math.round(tq - t0),
        'total ms': Math.round(t1 - t0),
        'messages/s': Math.round(N / ((t1 - t0) / 1000)),
        'received by SMTP': smtp.received.length,
      },
    ],
    notes: [
      'SQLite (WAL, synchronous=FULL), pooled SMTP transport (4 connections), one worker process.',
      'Each message: ledger check, idempotency claim, render (text+HTML), SMTP DATA, settle in one transaction.',
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
  writeResults('notifications', { machine: machineInfo({ db: 'sqlite' }), sections });
} finally {
  await queues.close();
  await smtp.close();
  await db.destroy();
  redis.stop();
}
