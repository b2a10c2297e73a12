import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { signBody } from '../../capa/signature.js';
import { insertUser } from '../../db/repositories/users.js';
import { parseEnv } from '../../lib/config.js';
import { ensureRedis } from '../../server/redis-bootstrap.js';
import type { User } from '../../db/schema.js';
import { freePort } from '../setup/global-setup.js';
import { startProc, waitHttp, type Proc } from '../support/processes.js';
import { ownSentinelGroup, type SentinelGroup } from '../support/redis-sentinel.js';
import { createTestDb, redisUrl, waitFor, type TestDb } from '../support/runtime.js';

/**
 * Redis failover under load, with real processes: a Sentinel group (one primary, one replica,
 * three sentinels), a web process and two worker processes configured with REDIS_SENTINELS.
 * Signed deliveries are posted to the intake at a steady rate; the primary is SIGKILLed; the
 * sentinels promote the replica; web and workers carry on without a restart, and every
 * acknowledged delivery is processed exactly once — proved from the database inbox and the
 * customers' state history, not from Redis.
 *
 * The nodes run with min-replicas-to-write 1, as docs/deploy.md asks, so the promoted replica
 * refuses writes until it has a replica itself: the killed node is started again once the
 * replica is promoted, as its supervisor would, and the sentinels make it a replica of the new
 * primary. Deliveries keep arriving through all of it.
 */
const SECRET = 'sentinel-webhook-secret';
const KEY = 'sentinel-partner-key';
const USERS = 480;
const PER_SECOND = 30;
const KILL_AT = 90;

describe('Redis Sentinel failover with real web and worker processes', () => {
  let group: SentinelGroup;
  let tdb: TestDb;
  let sandbox: Sandbox;
  let web: Proc;
  const workers: Proc[] = [];
  let webUrl: string;
  const prefix = `sen${randomBytes(4).toString('hex')}`;
  /** Where things stand, for a failed wait: readiness, who is connected to which node, process output. */
  const explain = async (err: unknown): Promise<never> => {
    const clients = async (port: number) => {
      try {
        const list = String(await group.ask(port, 'CLIENT', 'LIST'))
          .trim()
          .split('\n');
        return list.map((l) => `${/ name=(\S*)/.exec(l)?.[1] || '-'} ${/ cmd=(\S*)/.exec(l)?.[1]}`).join(', ');
      } catch (e) {
        return (e as Error).message;
      }
    };
    const ready = await fetch(`${webUrl}/readyz`).then(
      (r) => r.text(),
      (e: Error) => e.message,
    );
    throw new Error(
      [
        (err as Error).message,
        `readyz: ${ready}`,
        `clients on ${group.primaryPort} (first primary): ${await clients(group.primaryPort)}`,
        `clients on ${group.replicaPort} (first replica): ${await clients(group.replicaPort)}`,
        ...[web, ...workers].map((p) => `--- ${p.name}\n${p.output().slice(-3000)}`),
        group.output(),
      ].join('\n'),
    );
  };

  beforeAll(async () => {
    group = await ownSentinelGroup();
    tdb = await createTestDb('sqlite');
    sandbox = await createSandbox({ partners: [{ apiKey: KEY, webhookSecret: SECRET, webhookUrl: null }] });
    const port = await freePort();
    webUrl = `http://127.0.0.1:${port}`;
    // REDIS_URL (the suite's shared Redis) stays in the inherited environment: the sentinels
    // must take precedence over it.
    const env = {
      ...group.env,
      DATABASE_URL: tdb.url,
      QUEUE_PREFIX: prefix,
      CAPA_BASE_URL: sandbox.url,
      CAPA_API_KEY: KEY,
      CAPA_WEBHOOK_SECRET: SECRET,
      NODE_ENV: 'production',
      SESSION_SECRET: 'sentinel-session-secret-0123456789',
      PORT: String(port),
      SHUTDOWN_TIMEOUT_MS: '5000',
    };
    web = startProc('web', 'server/web.ts', env);
    for (let i = 0; i < 2; i++) workers.push(startProc(`worker-${i}`, 'jobs/worker.ts', env));
    await waitHttp(`${webUrl}/healthz`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await web?.stop();
    await sandbox?.close();
    await group?.close();
    await tdb?.close();
  });

  it("npm start's Redis check goes through the sentinels and starts no local Redis", async () => {
    const logged: string[] = [];
    const started = await ensureRedis(parseEnv({ NODE_ENV: 'test', ...group.env, REDIS_URL: 'redis://127.0.0.1:1' }).redis, {
      autostart: true,
      dataDir: '/nonexistent/kyc-data',
      log: (m) => logged.push(m),
    });
    expect(started).toBeNull();
    expect(logged).toEqual([]);
  });

  it('keeps acknowledging through a failover and processes every acknowledged delivery exactly once', async () => {
    // Ready through the sentinels: Redis answers and both workers are connected to every queue.
    await waitFor(
      async () => {
        const res = await fetch(`${webUrl}/readyz`);
        const body = (await res.json()) as { checks: { workers: { ok: boolean } } };
        return res.status === 200 && body.checks.workers.ok;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'readiness with workers' },
    ).catch(explain);

    const users: User[] = [];
    for (let i = 0; i < USERS; i++) {
      users.push(await insertUser(tdb.db, { email: `sentinel-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' }));
    }
    const pids = [web, ...workers].map((p) => p.child.pid);

    const post = async (u: User) => {
      const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId });
      const res = await fetch(`${webUrl}/webhooks/capa`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, SECRET) },
        body,
      });
      const json = res.ok ? ((await res.json()) as { id: number }) : null;
      return { status: res.status, id: json?.id ?? null, userId: u.id };
    };

    // One CREATED_KYC per customer, at a steady rate; the primary is killed after KILL_AT.
    let killedAt = -1;
    let promotedAt = -1;
    let failover: Promise<void> | undefined;
    const answers: Array<Promise<{ status: number; id: number | null; userId: string }>> = [];
    const start = Date.now();
    for (let i = 0; i < USERS; i++) {
      // Pacing, not waiting for something: deliveries leave at PER_SECOND whatever the answers.
      const due = start + (i * 1000) / PER_SECOND;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      if (i === KILL_AT) {
        killedAt = i;
        failover = (async () => {
          await group.kill(group.primaryPort, 'SIGKILL');
          await waitFor(async () => (await group.currentPrimary()) === group.replicaPort, {
            timeoutMs: 30_000,
            intervalMs: 100,
            what: 'the sentinels to promote the replica',
          }).catch(explain);
          promotedAt = answers.length;
          await group.restart(group.primaryPort);
        })();
        failover.catch(() => {}); // awaited (and so reported) after the load
      }
      answers.push(post(users[i]));
    }
    const acks = await Promise.all(answers);
    await failover;

    // The intake answered every delivery (it stores, then answers; Redis is never awaited), and
    // a good share of them arrived while no primary was there, or after the promotion.
    expect(acks.filter((a) => a.status !== 200)).toEqual([]);
    expect(promotedAt).toBeGreaterThan(killedAt);
    expect(USERS - promotedAt).toBeGreaterThanOrEqual(30);
    const ids = acks.map((a) => a.id!);
    expect(new Set(ids).size).toBe(USERS);

    await waitFor(
      async () =>
        (await tdb.db.selectFrom('webhookInbox').select('id').where('id', 'in', ids).where('status', '!=', 'processed').execute())
          .length === 0,
      { timeoutMs: 180_000, intervalMs: 500, what: 'every acknowledged delivery processed' },
    ).catch(explain);

    // Exactly once: each delivery moved its customer NOT_STARTED → IN_PROGRESS (a second run
    // that got past the handler's status check would have found IN_PROGRESS and settled the
    // row as noop), and caused exactly one state change.
    const rows = await tdb.db
      .selectFrom('webhookInbox')
      .select(['id', 'userId', 'stateFrom', 'stateTo', 'effect'])
      .where('id', 'in', ids)
      .execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const a of acks) {
      expect(byId.get(a.id!)).toEqual({ id: a.id, userId: a.userId, stateFrom: 'NOT_STARTED', stateTo: 'IN_PROGRESS', effect: 'apply' });
    }
    const changes = await tdb.db
      .selectFrom('stateChanges')
      .select(['userId', 'causeType', 'causeId', 'toState'])
      .where(
        'userId',
        'in',
        users.map((u) => u.id),
      )
      .execute();
    expect(changes.length).toBe(USERS);
    const causes = new Map(changes.map((c) => [c.causeId, c]));
    for (const a of acks)
      expect(causes.get(String(a.id))).toEqual({ userId: a.userId, causeType: 'webhook', causeId: String(a.id), toState: 'IN_PROGRESS' });

    // Nobody was restarted, and the web process is ready on the new primary.
    expect([web, ...workers].map((p) => p.child.pid)).toEqual(pids);
    for (const p of [web, ...workers]) expect(p.child.exitCode, p.output()).toBeNull();
    await waitFor(async () => (await fetch(`${webUrl}/readyz`)).status === 200, {
      timeoutMs: 30_000,
      what: 'readiness after the failover',
    }).catch(explain);
    expect(await group.currentPrimary()).toBe(group.replicaPort);

    // The queues live in the Sentinel group, not in the REDIS_URL every process also had.
    expect(((await group.ask(group.replicaPort, 'KEYS', `${prefix}:*`)) as string[]).length).toBeGreaterThan(0);
    const shared = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    try {
      expect(await shared.keys(`${prefix}:*`)).toEqual([]);
    } finally {
      shared.disconnect();
    }
  }, 360_000);
});
