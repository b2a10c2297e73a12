import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapaClient } from '../../capa/client.js';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { stateHistory } from '../../db/repositories/users.js';
import { fetchDetails } from '../../jobs/definitions/fetch-details.js';
import { sendNotification } from '../../jobs/definitions/send-notification.js';
import { refreshScan } from '../../jobs/definitions/refresh-scan.js';
import { startTestSmtp } from '../support/smtp.js';
import { insertMessage } from '../../db/repositories/notifications.js';
import { insertLink } from '../../db/repositories/links.js';
import { insertUser } from '../../db/repositories/users.js';
import { Queues } from '../../jobs/queues.js';
import { startProc } from '../support/processes.js';
import { createTestDb, redisUrl, waitFor, type TestDb } from '../support/runtime.js';

const SECRET = 'signals-webhook-secret';
const KEY = 'signals-partner-key';

/** Seeds customers with a stored CREATED_KYC delivery each and queues their processing jobs. */
async function seedDeliveries(tdb: TestDb, prefix: string, n: number) {
  const now = new Date().toISOString();
  const users = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    externalUserId: `sig-${prefix}-${i}`,
    capaUserId: randomUUID(),
    type: 'INDIVIDUAL' as const,
    email: `sig-${prefix}-${i}@example.mx`,
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
  }));
  for (let i = 0; i < n; i += 200) {
    await tdb.db
      .insertInto('users')
      .values(users.slice(i, i + 200))
      .execute();
    await tdb.db
      .insertInto('webhookInbox')
      .values(
        users.slice(i, i + 200).map((u) => ({
          receivedAt: now,
          rawBody: '{}',
          headers: '{}',
          signatureVerdict: 'valid' as const,
          secretIndex: 0,
          eventType: 'KYC',
          eventName: 'CREATED_KYC',
          externalUserId: u.externalUserId,
          dedupeKey: null,
          duplicateOf: null,
          status: 'received' as const,
          enqueuedAt: now,
        })),
      )
      .execute();
  }
  const ids = (await tdb.db.selectFrom('webhookInbox').select('id').execute()).map((r) => r.id);
  const conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const q = new Queue('webhooks', { connection: conn, prefix });
  await q.addBulk(ids.map((id) => ({ name: 'process-webhook', data: { inboxId: id }, opts: { jobId: `wh-${id}`, attempts: 8 } })));
  await q.close();
  conn.disconnect();
  return users;
}

describe('worker processes under SIGKILL and SIGTERM', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await createSandbox({ partners: [{ apiKey: KEY, webhookSecret: SECRET, webhookUrl: null }] });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  const envFor = (tdb: TestDb, prefix: string) => ({
    DATABASE_URL: tdb.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    CAPA_BASE_URL: sandbox.url,
    CAPA_API_KEY: KEY,
    CAPA_WEBHOOK_SECRET: SECRET,
    SHUTDOWN_TIMEOUT_MS: '8000',
    CAPA_RATE_LIMIT_PER_SEC: '500',
  });

  it('SIGKILL mid-batch: a second worker finishes everything, each delivery takes effect once', async () => {
    const tdb = await createTestDb('sqlite');
    const prefix = `k${randomBytes(4).toString('hex')}`;
    try {
      const users = await seedDeliveries(tdb, prefix, 1500);
      const done = async () => (await tdb.db.selectFrom('webhookInbox').select('id').where('status', '<>', 'received').execute()).length;
      const first = startProc('worker-1', 'jobs/worker.ts', envFor(tdb, prefix));
      await waitFor(async () => (await done()) >= 300, { timeoutMs: 60_000, what: 'first worker to make progress' });
      first.child.kill('SIGKILL');
      await first.exited();
      const killedAt = await done();
      expect(killedAt).toBeLessThan(1500); // it really died mid-batch
      const second = startProc('worker-2', 'jobs/worker.ts', envFor(tdb, prefix));
      try {
        // Jobs the killed worker held are returned by BullMQ's stalled-job check (lock expiry, ~30 s).
        await waitFor(async () => (await done()) === 1500, { timeoutMs: 120_000, intervalMs: 500, what: 'all deliveries processed' });
      } finally {
        await second.stop();
      }
      const failed = await tdb.db.selectFrom('webhookInbox').select('id').where('status', '=', 'failed').execute();
      expect(failed).toEqual([]);
      const changes = await tdb.db.selectFrom('stateChanges').select(['userId']).execute();
      expect(changes.length).toBe(1500); // exactly one LINK_ISSUED→IN_PROGRESS per customer
      expect(new Set(changes.map((c) => c.userId)).size).toBe(1500);
      expect((await stateHistory(tdb.db, users[0].id)).map((h) => h.toState)).toEqual(['IN_PROGRESS']);
    } finally {
      await tdb.close();
    }
  }, 240_000);

  it('SIGTERM under load: active Capa calls finish, nothing fails or stalls, exit within the bound', async () => {
    const tdb = await createTestDb('sqlite');
    const prefix = `g${randomBytes(4).toString('hex')}`;
    const capa = new CapaClient({ baseUrl: sandbox.url, apiKey: KEY });
    const queues = new Queues({ redis: redisUrl(), prefix });
    try {
      const now = new Date().toISOString();
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) {
        const email = `term-${prefix}-${i}@example.mx`;
        const externalUserId = `term-${prefix}-${i}`;
        const { userId } = await capa.createUser({ type: 'INDIVIDUAL', email, externalUserId });
        const id = randomUUID();
        ids.push(id);
        await tdb.db
          .insertInto('users')
          .values({
            id,
            externalUserId,
            capaUserId: userId,
            type: 'INDIVIDUAL',
            email,
            alias: null,
            country: 'MX',
            kycState: 'LINK_ISSUED',
            kycStateChangedAt: now,
            kycStateReason: null,
            kycStateCause: null,
            capaConfirmedAt: null,
            capaSync: 'created',
            capaSyncError: null,
            unmappedResult: null,
            assigneeId: null,
            createdBy: null,
            createdAt: now,
            updatedAt: now,
          })
          .execute();
      }
      sandbox.setFaults({ latencyMs: 700 });
      for (const id of ids) await queues.add(fetchDetails, { userId: id, cause: 'sigterm-test' });
      const worker = startProc('worker', 'jobs/worker.ts', { ...envFor(tdb, prefix), WORKER_CONCURRENCY: '8', LOG_LEVEL: 'info' });
      const q = queues.queue('capa');
      await waitFor(async () => (await q.getActiveCount()) >= 4, { timeoutMs: 60_000, what: 'jobs in flight' });
      const { code, ms } = await worker.stop('SIGTERM');
      expect(code, worker.output()).toBe(0);
      expect(ms).toBeLessThan(8000 + 5000);
      const counts = await q.getJobCounts('active', 'failed', 'waiting', 'delayed', 'prioritized');
      expect(counts.active).toBe(0); // nothing left holding a lock: nothing will stall
      expect(counts.failed).toBe(0);
      // Completed fetch-details jobs are removed from Redis; their runs are in job_runs.
      const finished = (
        await tdb.db.selectFrom('jobRuns').select('id').where('jobName', '=', 'fetch-details').where('status', '=', 'completed').execute()
      ).length;
      expect(finished).toBeGreaterThan(0); // in-flight calls were allowed to finish
      expect(finished + counts.waiting + counts.delayed + counts.prioritized).toBe(60);
      sandbox.setFaults({});
      const again = startProc('worker-again', 'jobs/worker.ts', envFor(tdb, prefix));
      try {
        await waitFor(
          async () =>
            (
              await tdb.db
                .selectFrom('jobRuns')
                .select('id')
                .where('jobName', '=', 'fetch-details')
                .where('status', '=', 'completed')
                .execute()
            ).length === 60,
          { timeoutMs: 60_000, what: 'remaining jobs' },
        );
      } finally {
        await again.stop();
      }
      const runs = await tdb.db.selectFrom('jobRuns').select(['status']).where('jobName', '=', 'fetch-details').execute();
      expect(runs.filter((r) => r.status === 'failed')).toEqual([]);
      expect(runs.filter((r) => r.status === 'completed').length).toBe(60);
    } finally {
      sandbox.setFaults({});
      await queues.close();
      await tdb.close();
    }
  }, 180_000);

  it('SIGKILL mid notification batch: after restart every message is settled and none is sent twice', async () => {
    const tdb = await createTestDb('sqlite');
    const prefix = `n${randomBytes(4).toString('hex')}`;
    const smtp = await startTestSmtp();
    const queues = new Queues({ redis: redisUrl(), prefix });
    const M = 120;
    try {
      for (let i = 0; i < M; i++) {
        const u = await insertUser(tdb.db, { email: `mail-${prefix}-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
        const link = await tdb.db
          .transaction()
          .execute((trx) =>
            insertLink(trx, { userId: u.id, url: `https://kyc.example/s/${i}`, country: 'MX', redirectUri: null, createdBy: null }),
          );
        const { row } = await insertMessage(tdb.db, {
          userId: u.id,
          kind: 'kyc_link',
          channel: 'email',
          locale: 'es',
          address: u.email,
          dedupeKey: `kill-test-${i}`,
          linkId: link.id,
          linkUrl: link.url,
        });
        await queues.add(sendNotification, { notificationId: row.id });
      }
      const env = { ...envFor(tdb, prefix), SMTP_URL: smtp.url, NOTIFY_BACKOFF_MS: '200' };
      const sent = async () => (await tdb.db.selectFrom('notifications').select('id').where('status', '=', 'sent').execute()).length;
      const first = startProc('worker-1', 'jobs/worker.ts', env);
      await waitFor(async () => (await sent()) >= 25, { timeoutMs: 60_000, what: 'first sends' });
      first.child.kill('SIGKILL');
      await first.exited();
      expect(await sent()).toBeLessThan(M);
      const second = startProc('worker-2', 'jobs/worker.ts', env);
      try {
        await waitFor(
          async () => (await tdb.db.selectFrom('notifications').select('id').where('status', '=', 'queued').execute()).length === 0,
          { timeoutMs: 150_000, intervalMs: 1000, what: 'every message settled' },
        );
      } finally {
        await second.stop();
      }
      const rows = await tdb.db.selectFrom('notifications').select(['address', 'status', 'failureReason']).execute();
      const perAddress = new Map<string, number>();
      for (const m of smtp.received) for (const to of m.envelopeTo) perAddress.set(to, (perAddress.get(to) ?? 0) + 1);
      expect([...perAddress.values()].every((n) => n === 1)).toBe(true); // the sink saw no duplicate
      const sentRows = rows.filter((r) => r.status === 'sent');
      for (const r of sentRows) expect(perAddress.get(r.address)).toBe(1);
      // A send interrupted by the kill is not retried blindly: it is settled for a human.
      for (const r of rows.filter((x) => x.status !== 'sent')) expect(r.status).toBe('failed');
      expect(sentRows.length).toBeGreaterThan(M * 0.9);
    } finally {
      await queues.close();
      await smtp.close();
      await tdb.close();
    }
  }, 240_000);

  it('SIGKILL mid refresh batch: after restart every stale customer is confirmed and matches Capa', async () => {
    const tdb = await createTestDb('sqlite');
    const prefix = `r${randomBytes(4).toString('hex')}`;
    const capa = new CapaClient({ baseUrl: sandbox.url, apiKey: KEY });
    const queues = new Queues({ redis: redisUrl(), prefix });
    const R = 300;
    try {
      const old = new Date(Date.now() - 2 * 86_400_000).toISOString();
      const outcomes = ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED'] as const;
      const expected = new Map<string, string>();
      for (let i = 0; i < R; i++) {
        const email = `stale-${prefix}-${i}@example.mx`;
        const externalUserId = `stale-${prefix}-${i}`;
        const { userId } = await capa.createUser({ type: 'INDIVIDUAL', email, externalUserId });
        await capa.generateKycLink(userId, { country: 'MX' });
        sandbox.setOutcome(userId, outcomes[i % 3]);
        const id = randomUUID();
        expected.set(id, outcomes[i % 3]);
        await tdb.db
          .insertInto('users')
          .values({
            id,
            externalUserId,
            capaUserId: userId,
            type: 'INDIVIDUAL',
            email,
            alias: null,
            country: 'MX',
            kycState: 'LINK_ISSUED',
            kycStateChangedAt: old,
            kycStateReason: null,
            kycStateCause: null,
            capaConfirmedAt: old,
            capaSync: 'created',
            capaSyncError: null,
            unmappedResult: null,
            assigneeId: null,
            createdBy: null,
            createdAt: old,
            updatedAt: old,
          })
          .execute();
      }
      const env = { ...envFor(tdb, prefix), CAPA_RATE_LIMIT_PER_SEC: '40' };
      const confirmed = async () => (await tdb.db.selectFrom('users').select('id').where('capaConfirmedAt', '>', old).execute()).length;
      await queues.add(refreshScan, {});
      const first = startProc('worker-1', 'jobs/worker.ts', env);
      await waitFor(async () => (await confirmed()) >= 60, { timeoutMs: 60_000, what: 'refresh under way' });
      first.child.kill('SIGKILL');
      await first.exited();
      expect(await confirmed()).toBeLessThan(R);
      const second = startProc('worker-2', 'jobs/worker.ts', env);
      try {
        await waitFor(async () => (await confirmed()) === R, {
          timeoutMs: 150_000,
          intervalMs: 1000,
          what: 'every stale customer confirmed',
        });
      } finally {
        await second.stop();
      }
      // Every customer reached Capa's outcome (rejected ones are then re-invited by the retry
      // programme, so their current state may already be LINK_ISSUED again).
      const changes = await tdb.db.selectFrom('stateChanges').select(['userId', 'toState']).where('causeType', '=', 'poll').execute();
      const reached = new Map(changes.map((c) => [c.userId, c.toState]));
      for (const [id, outcome] of expected) expect(reached.get(id)).toBe(outcome);
      expect(changes.length).toBe(R); // each customer's drift applied once, despite the kill
      const failed = await tdb.db
        .selectFrom('jobRuns')
        .select('id')
        .where('jobName', '=', 'fetch-details')
        .where('status', '=', 'failed')
        .execute();
      expect(failed).toEqual([]);
    } finally {
      await queues.close();
      await tdb.close();
    }
  }, 300_000);
});
