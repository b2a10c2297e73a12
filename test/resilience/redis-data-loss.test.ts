import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { signBody } from '../../capa/signature.js';
import { insertUser } from '../../db/repositories/users.js';
import type { User } from '../../db/schema.js';
import { Queues } from '../../jobs/queues.js';
import { SCHEDULES } from '../../jobs/registry.js';
import { freePort } from '../setup/global-setup.js';
import { ownRedis, startProc, waitHttp, type Proc } from '../support/processes.js';
import { createTestDb, waitFor, type TestDb } from '../support/runtime.js';

/**
 * Redis is a queue that can be rebuilt from the database. With real web and worker processes
 * over a private redis-server WITHOUT persistence:
 *  - killed mid-load and started again empty on the same port,
 *  - emptied by FLUSHALL while the connection stays up,
 *  - frozen (SIGSTOP),
 * every acknowledged delivery reaches a final status without restarting anything. Before each
 * loss the webhooks queue is paused, so deliveries are queued (and marked queued by the relay)
 * but not yet processed — exactly the work a data loss takes with it.
 */
const SECRET = 'loss-webhook-secret';
const KEY = 'loss-partner-key';

describe('Redis losing its data or freezing, with real web and worker processes', () => {
  let redis: Awaited<ReturnType<typeof ownRedis>>;
  let tdb: TestDb;
  let sandbox: Sandbox;
  let web: Proc;
  let worker: Proc;
  let webUrl: string;
  let queues: Queues;
  const prefix = `loss${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    redis = await ownRedis({ persistence: false });
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
      SESSION_SECRET: 'loss-session-secret-0123456789',
      PORT: String(port),
      SHUTDOWN_TIMEOUT_MS: '5000',
    };
    web = startProc('web', 'server/web.ts', env);
    worker = startProc('worker', 'jobs/worker.ts', env);
    queues = new Queues({ redis: redis.url, prefix });
    await waitHttp(`${webUrl}/healthz`);
  }, 120_000);

  afterAll(async () => {
    await queues?.close();
    await worker?.stop();
    await web?.stop();
    await sandbox?.close();
    await redis?.close();
    await tdb?.close();
  });

  async function customers(n: number, tag: string): Promise<User[]> {
    const out: User[] = [];
    for (let i = 0; i < n; i++) out.push(await insertUser(tdb.db, { email: `${tag}-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' }));
    return out;
  }

  async function post(externalUserId: string): Promise<{ status: number; id?: number }> {
    const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId });
    const res = await fetch(`${webUrl}/webhooks/capa`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, SECRET) },
      body,
    });
    const json = (await res.json().catch(() => ({}))) as { id?: number };
    return { status: res.status, id: json.id };
  }

  /** Posts one CREATED_KYC per customer, `parallel` at a time; every answer must be a 2xx. */
  async function load(users: User[], parallel: number, onAck?: (acked: number) => void | Promise<void>): Promise<number[]> {
    const ids: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < users.length) {
          const u = users[next++];
          const r = await post(u.externalUserId);
          expect(r.status, web.output()).toBe(200);
          ids.push(r.id!);
          await onAck?.(ids.length);
        }
      }),
    );
    return ids;
  }

  const statuses = async (ids: number[]) =>
    tdb.db.selectFrom('webhookInbox').select(['id', 'status', 'enqueuedAt']).where('id', 'in', ids).execute();

  /** Every delivery processed, each customer moved exactly once, nothing restarted. */
  async function expectAllProcessed(users: User[], ids: number[], timeoutMs: number) {
    await waitFor(async () => (await statuses(ids)).every((r) => r.status !== 'received'), {
      timeoutMs,
      intervalMs: 500,
      what: 'every acknowledged delivery to reach a final status',
    });
    expect((await statuses(ids)).filter((r) => r.status !== 'processed')).toEqual([]);
    const changes = await tdb.db
      .selectFrom('stateChanges')
      .select('userId')
      .where(
        'userId',
        'in',
        users.map((u) => u.id),
      )
      .execute();
    expect(changes.length).toBe(users.length);
    expect(new Set(changes.map((c) => c.userId)).size).toBe(users.length);
    expect(worker.child.exitCode, worker.output()).toBeNull();
    expect(web.child.exitCode, web.output()).toBeNull();
  }

  async function expectSchedulers() {
    await waitFor(
      async () => {
        for (const s of SCHEDULES) if (!(await queues.queue(s.queue).getJobScheduler(s.id))) return false;
        return true;
      },
      { timeoutMs: 30_000, what: 'every job scheduler back in Redis' },
    );
  }

  /** Deliveries stay queued in Redis, unprocessed, and the relay marks them queued. */
  async function holdProcessing() {
    await waitFor(() => queues.connected, { what: 'test connection to Redis' });
    await queues.queue('webhooks').pause();
  }

  it('redis-server killed mid-load and started empty on the same port: every delivery is processed without a restart', async () => {
    const workerPid = worker.child.pid;
    const users = await customers(240, 'killed');
    await holdProcessing();
    // The first half is acknowledged, queued and marked queued by the relay; the rest arrives
    // while Redis is killed and restarted empty.
    const first = await load(users.slice(0, 120), 4);
    await waitFor(async () => (await statuses(first)).every((r) => r.enqueuedAt !== null), {
      timeoutMs: 30_000,
      what: 'relay to mark the first half queued',
    });
    expect((await statuses(first)).every((r) => r.status === 'received')).toBe(true);

    let killed: Promise<void> | undefined;
    const rest = await load(users.slice(120), 4, (acked) => {
      if (acked === 30)
        killed = (async () => {
          await redis.stop('SIGKILL');
          await new Promise((r) => setTimeout(r, 1000));
          await redis.start();
        })();
    });
    await killed;

    await expectSchedulers();
    await expectAllProcessed(users, [...first, ...rest], 120_000);
    expect(worker.child.pid).toBe(workerPid);
    expect(worker.output()).toMatch(/job scheduler relay-inbox (was missing|had no next run)/);
  }, 240_000);

  it('FLUSHALL: the worker notices its schedules are gone, and the relay queues what was lost', async () => {
    const users = await customers(120, 'flushed');
    await holdProcessing();
    const ids = await load(users, 4);
    await waitFor(async () => (await statuses(ids)).every((r) => r.enqueuedAt !== null), {
      timeoutMs: 30_000,
      what: 'relay to mark them queued',
    });
    expect(await queues.queue('webhooks').getJobCounts('paused')).toEqual({ paused: 120 });

    await queues.connection.flushall();
    expect(await queues.queue('maintenance').getJobScheduler('relay-inbox')).toBeUndefined();

    await expectSchedulers();
    await expectAllProcessed(users, ids, 120_000);
  }, 240_000);

  it('frozen Redis (SIGSTOP): deliveries are answered while it is frozen and processed after SIGCONT', async () => {
    const users = await customers(100, 'frozen');
    redis.signal('SIGSTOP');
    const answered: number[] = [];
    try {
      // One after another, as Capa sends them: had each answer waited for Redis (its 2 s
      // command timeout), only a handful would be in before the 10 s freeze ends.
      const until = Date.now() + 10_000;
      for (const u of users) {
        if (Date.now() > until) break;
        const r = await post(u.externalUserId);
        expect(r.status, web.output()).toBe(200);
        answered.push(r.id!);
      }
    } finally {
      redis.signal('SIGCONT');
    }
    expect(answered.length).toBe(users.length);
    await expectAllProcessed(users, answered, 120_000);
  }, 180_000);
});
