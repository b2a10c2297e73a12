import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapaClient } from '../../capa/client.js';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { signBody } from '../../capa/signature.js';
import { insertUser, markCapaCreated, stateHistory } from '../../db/repositories/users.js';
import { processWebhook } from '../../jobs/definitions/process-webhook.js';
import { Queues } from '../../jobs/queues.js';
import { freePort } from '../setup/global-setup.js';
import { ownRedis, startProc, waitHttp, type Proc } from '../support/processes.js';
import { createTestDb, waitFor, type TestDb } from '../support/runtime.js';

/**
 * Stop Redis for OUTAGE_SECONDS (60 by default) while webhooks keep arriving. The
 * intake keeps answering 2xx within 1 s (the inbox is the database), enqueueing reports
 * "unavailable" instead of hanging, the relay queues everything once Redis is back, the same
 * worker process resumes by itself, and every acknowledged delivery takes effect exactly once.
 */
const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? 60) * 1000;
const SECRET = 'outage-webhook-secret';
const KEY = 'outage-partner-key';

describe('Redis outage with real web and worker processes', () => {
  let redis: Awaited<ReturnType<typeof ownRedis>>;
  let tdb: TestDb;
  let sandbox: Sandbox;
  let web: Proc;
  let worker: Proc;
  let webUrl: string;
  const prefix = `out${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    redis = await ownRedis();
    tdb = await createTestDb('sqlite');
    const port = await freePort();
    webUrl = `http://127.0.0.1:${port}`;
    sandbox = await createSandbox({ partners: [{ apiKey: KEY, webhookSecret: SECRET, webhookUrl: null }] });
    const env = {
      DATABASE_URL: tdb.url,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      CAPA_BASE_URL: sandbox.url,
      CAPA_API_KEY: KEY,
      CAPA_WEBHOOK_SECRET: SECRET,
      NODE_ENV: 'production',
      SESSION_SECRET: 'outage-session-secret-0123456789',
      PORT: String(port),
      SHUTDOWN_TIMEOUT_MS: '5000',
    };
    web = startProc('web', 'server/web.ts', env);
    worker = startProc('worker', 'jobs/worker.ts', env);
    await waitHttp(`${webUrl}/healthz`);
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await web?.stop();
    await sandbox?.close();
    await redis?.close();
    await tdb?.close();
  });

  it(
    `keeps acknowledging during a ${OUTAGE_MS / 1000} s outage and applies every delivery exactly once afterwards`,
    async () => {
      const capa = new CapaClient({ baseUrl: sandbox.url, apiKey: KEY });
      const users = [];
      for (let i = 0; i < 30; i++) {
        const u = await insertUser(tdb.db, { email: `outage-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
        const { userId } = await capa.createUser({ type: 'INDIVIDUAL', email: u.email, externalUserId: u.externalUserId });
        await markCapaCreated(tdb.db, u.id, userId);
        users.push(u);
      }
      const post = async (event: string, externalUserId: string) => {
        const body = JSON.stringify({ type: 'KYC', event, externalUserId });
        const t0 = Date.now();
        const res = await fetch(`${webUrl}/webhooks/capa`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, SECRET) },
          body,
        });
        return { status: res.status, ms: Date.now() - t0 };
      };

      // Before the outage: the loop works.
      for (const u of users.slice(0, 10)) expect((await post('CREATED_KYC', u.externalUserId)).status, web.output()).toBe(200);
      await waitFor(
        async () => (await tdb.db.selectFrom('users').select('id').where('kycState', '=', 'IN_PROGRESS').execute()).length === 10,
        { what: 'pre-outage processing' },
      );

      await redis.stop();
      const outageStart = Date.now();
      const answers: Array<{ status: number; ms: number }> = [];
      for (const u of users.slice(10)) answers.push(await post('CREATED_KYC', u.externalUserId));
      for (const u of users) answers.push(await post('VERIFIED_USER', u.externalUserId));
      for (const u of users.slice(0, 5)) answers.push(await post('VERIFIED_USER', u.externalUserId)); // Capa retrying
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(1000);

      // An operator action enqueues through the same Queues: it reports "unavailable", not a hang.
      const q = new Queues({ redis: redis.url, prefix });
      const t0 = Date.now();
      const r = await q.addAndWait(processWebhook, { inboxId: 1 }, 4000);
      expect(r.state).toBe('unavailable');
      expect(Date.now() - t0).toBeLessThan(3000);

      // Keep delivering during the rest of the outage window.
      while (Date.now() - outageStart < OUTAGE_MS) {
        const a = await post('VERIFIED_USER', users[0].externalUserId);
        expect(a.status).toBe(200);
        expect(a.ms).toBeLessThan(1000);
        await new Promise((res) => setTimeout(res, 1000));
      }
      const stored = await tdb.db.selectFrom('webhookInbox').select(['id', 'status']).where('status', '=', 'received').execute();
      expect(stored.length).toBe(50); // 20 CREATED + 30 VERIFIED; retries inside the window are duplicates

      await redis.start();
      const workerPid = worker.child.pid;
      await waitFor(
        async () => (await tdb.db.selectFrom('webhookInbox').select('id').where('status', '=', 'received').execute()).length === 0,
        { timeoutMs: 60_000, intervalMs: 500, what: 'relay and workers to drain the inbox' },
      );
      expect(worker.child.pid).toBe(workerPid);
      expect(worker.child.exitCode).toBeNull();
      await q.close();

      for (const u of users) {
        const hist = await stateHistory(tdb.db, u.id);
        expect(hist.map((h) => h.toState)).toEqual(['IN_PROGRESS', 'VERIFIED']);
      }
      const failed = await tdb.db.selectFrom('webhookInbox').select('id').where('status', '=', 'failed').execute();
      expect(failed).toEqual([]);
    },
    OUTAGE_MS + 180_000,
  );
});
