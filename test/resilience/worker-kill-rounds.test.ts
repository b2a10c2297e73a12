import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { signBody } from '../../capa/signature.js';
import { insertUser, stateHistory } from '../../db/repositories/users.js';
import type { User } from '../../db/schema.js';
import { Queues } from '../../jobs/queues.js';
import { freePort } from '../setup/global-setup.js';
import { startProc, waitHttp, type Proc } from '../support/processes.js';
import { createTestDb, POSTGRES_URL, postgresAvailable, redisUrl, waitFor, type TestDb } from '../support/runtime.js';

/**
 * Workers killed (SIGKILL) mid-processing, round after round, while deliveries keep arriving:
 * every acknowledged delivery is still processed, each exactly once in effect.
 *
 * One delivery is made to be in flight at every kill: the test holds its customer's row lock
 * (PostgreSQL SELECT … FOR UPDATE), so its job waits inside the worker the way a slow commit
 * does. BullMQ hands a job whose worker died back to the queue — once. Caught in a second crash
 * it fails the job itself ("job stalled more than allowable limit") without running our handler,
 * so the delivery stayed `received` with a failed job of its deterministic id in Redis, and the
 * relay's re-add was a no-op: the acknowledged delivery was never processed. The relay now
 * replaces such a job.
 */
const SECRET = 'rounds-webhook-secret';
const KEY = 'rounds-partner-key';
const ROUNDS = 2;

const hasPg = await postgresAvailable();

describe.runIf(hasPg)('worker SIGKILLed mid-processing, several rounds', () => {
  let tdb: TestDb;
  let sandbox: Sandbox;
  let web: Proc;
  let webUrl: string;
  let env: Record<string, string>;
  let queues: Queues;
  const workers: Proc[] = [];
  const prefix = `kr${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    tdb = await createTestDb('postgres');
    sandbox = await createSandbox({ partners: [{ apiKey: KEY, webhookSecret: SECRET, webhookUrl: null }] });
    const schema = (
      await tdb.db
        .withoutPlugins()
        .selectNoFrom((eb) => eb.fn<string>('current_schema', []).as('s'))
        .executeTakeFirstOrThrow()
    ).s;
    const dbUrl = `${POSTGRES_URL}${POSTGRES_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const port = await freePort();
    webUrl = `http://127.0.0.1:${port}`;
    env = {
      DATABASE_URL: dbUrl,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      CAPA_BASE_URL: sandbox.url,
      CAPA_API_KEY: KEY,
      CAPA_WEBHOOK_SECRET: SECRET,
      NODE_ENV: 'production',
      SESSION_SECRET: 'rounds-session-secret-0123456789',
      PORT: String(port),
      SHUTDOWN_TIMEOUT_MS: '3000',
    };
    web = startProc('web', 'server/web.ts', env);
    queues = new Queues({ redis: redisUrl(), prefix });
    await waitHttp(`${webUrl}/healthz`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await web?.stop();
    // This test's keys only: the test Redis is shared.
    try {
      let cursor = '0';
      do {
        const [next, keys] = await queues.connection.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await queues.connection.del(...keys);
      } while (cursor !== '0');
    } catch {
      /* Redis gone */
    }
    await queues?.close();
    await sandbox?.close();
    await tdb?.close();
  });

  async function deliver(users: User[]): Promise<number[]> {
    const ids: number[] = [];
    for (const u of users) {
      const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId });
      const res = await fetch(`${webUrl}/webhooks/capa`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, SECRET) },
        body,
      });
      expect(res.status, web.output()).toBe(200);
      ids.push(((await res.json()) as { id: number }).id);
    }
    return ids;
  }

  it(`${ROUNDS} kill/restart rounds with a delivery in flight at each kill: every delivery is processed once`, async () => {
    const users: User[] = [];
    for (let i = 0; i < 20 * (ROUNDS + 1) + 1; i++)
      users.push(await insertUser(tdb.db, { email: `round-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' }));
    const [held, ...others] = users;
    // The held customer's row stays locked through every round.
    const lock = new pg.Client({ connectionString: env.DATABASE_URL });
    await lock.connect();
    await lock.query('begin');
    await lock.query('select id from users where id = $1 for update', [held.id]);
    const ids: number[] = [];
    let released = false;
    try {
      const [heldId] = await deliver([held]);
      ids.push(heldId);
      const heldJob = `wh-${heldId}`;
      const webhooks = queues.queue('webhooks');

      for (let round = 1; round <= ROUNDS; round++) {
        // Deliveries keep arriving between the kills.
        ids.push(...(await deliver(others.slice((round - 1) * 20, round * 20))));
        const w = startProc(`worker-${round}`, 'jobs/worker.ts', env);
        workers.push(w);
        // The held delivery is back in a worker: at once in the first round, after BullMQ's
        // stalled-job check hands it back (lock expiry, up to about a minute) in later ones.
        await waitFor(
          async () => {
            const job = await webhooks.getJob(heldJob);
            return job && (await job.getState()) === 'active' && (job.stalledCounter ?? 0) >= round - 1;
          },
          { timeoutMs: 90_000, intervalMs: 200, what: `round ${round}: the held delivery in flight` },
        );
        w.child.kill('SIGKILL');
        await w.exited();
      }

      // Last round: the row is free, a worker that stays. Nothing is restarted by hand after this.
      await lock.query('rollback');
      released = true;
      ids.push(...(await deliver(others.slice(ROUNDS * 20))));
      const last = startProc('worker-last', 'jobs/worker.ts', env);
      workers.push(last);
      await waitFor(
        async () =>
          (await tdb.db.selectFrom('webhookInbox').select('id').where('id', 'in', ids).where('status', '=', 'received').execute())
            .length === 0,
        {
          timeoutMs: 180_000,
          intervalMs: 500,
          what: 'every acknowledged delivery processed',
        },
      );
      // The loss really happened — BullMQ failed the held job after its second crash — and the
      // relay replaced it.
      expect(last.output()).toContain('job stalled more than allowable limit');
      expect(last.output()).toContain('queued again');
    } finally {
      if (!released) await lock.query('rollback').catch(() => {});
      await lock.end();
    }

    const rows = await tdb.db.selectFrom('webhookInbox').select(['id', 'status', 'effect']).where('id', 'in', ids).execute();
    expect(rows.length).toBe(users.length);
    expect(rows.filter((r) => r.status !== 'processed')).toEqual([]);
    for (const u of [held, others[0], others.at(-1)!])
      expect((await stateHistory(tdb.db, u.id)).map((h) => h.toState)).toEqual(['IN_PROGRESS']);
    const changes = await tdb.db
      .selectFrom('stateChanges')
      .select('userId')
      .where(
        'userId',
        'in',
        users.map((u) => u.id),
      )
      .execute();
    expect(changes.length).toBe(users.length); // one change per customer, however often its job ran
  }, 420_000);
});
