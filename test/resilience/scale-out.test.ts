import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapaClient } from '../../capa/client.js';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { signBody } from '../../capa/signature.js';
import { insertUser, markCapaCreated, stateHistory } from '../../db/repositories/users.js';
import { commitImport, findImport } from '../../db/repositories/imports.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { freePort } from '../setup/global-setup.js';
import { startProc, waitHttp, type Proc } from '../support/processes.js';
import { createTestDb, POSTGRES_URL, postgresAvailable, redisUrl, waitFor, type TestDb } from '../support/runtime.js';

/**
 * Scale-out, and no PII in logs, job payloads or Redis: the same code on
 * PostgreSQL with two web processes and two worker processes. Webhooks — each sent twice, to
 * both web processes at once — are applied exactly once in effect; the relay schedule fires once
 * per period however many workers run; and unique markers seeded in customers' e-mails and
 * aliases never appear in process output (debug logging) or anywhere in Redis.
 */
const SECRET = 'scale-webhook-secret';
const KEY = 'scale-partner-key';
const N = 120;

const hasPg = await postgresAvailable();

describe.runIf(hasPg)('scale-out on PostgreSQL: 2 web + 2 worker processes', () => {
  let tdb: TestDb;
  let sandbox: Sandbox;
  const procs: Proc[] = [];
  const webs: string[] = [];
  const prefix = `so${randomBytes(4).toString('hex')}`;
  const marker = `piimark${randomBytes(5).toString('hex')}`;

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
    const base = {
      DATABASE_URL: dbUrl,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      CAPA_BASE_URL: sandbox.url,
      CAPA_API_KEY: KEY,
      CAPA_WEBHOOK_SECRET: SECRET,
      NODE_ENV: 'production',
      SESSION_SECRET: 'scale-session-secret-0123456789',
      LOG_LEVEL: 'debug',
      SHUTDOWN_TIMEOUT_MS: '5000',
    };
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      procs.push(startProc(`web-${i}`, 'server/web.ts', { ...base, PORT: String(port) }));
      webs.push(`http://127.0.0.1:${port}`);
    }
    for (let i = 0; i < 2; i++) procs.push(startProc(`worker-${i}`, 'jobs/worker.ts', base));
    for (const w of webs) await waitHttp(`${w}/healthz`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await sandbox?.close();
    await tdb?.close();
  });

  it('applies every delivery once, fires the schedule once, and leaks no PII', async () => {
    const capa = new CapaClient({ baseUrl: sandbox.url, apiKey: KEY });
    const users = [];
    for (let i = 0; i < N; i++) {
      const u = await insertUser(tdb.db, {
        email: `${marker}.${i}@example.mx`,
        alias: `${marker} Alias ${i}`,
        type: 'INDIVIDUAL',
        country: 'MX',
      });
      const { userId } = await capa.createUser({ type: 'INDIVIDUAL', email: u.email, externalUserId: u.externalUserId, alias: u.alias! });
      await markCapaCreated(tdb.db, u.id, userId);
      users.push(u);
    }
    const relayRunsBefore = (await tdb.db.selectFrom('jobRuns').select('id').where('jobName', '=', 'relay-inbox').execute()).length;
    const windowStart = Date.now();
    const post = async (web: string, event: string, externalUserId: string) => {
      const body = JSON.stringify({ type: 'KYC', event, externalUserId });
      return (
        await fetch(`${web}/webhooks/capa`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, SECRET) },
          body,
        })
      ).status;
    };
    // Each delivery goes to both web processes at the same moment (Capa retrying while the first
    // attempt is still in flight), CREATED_KYC first, then the outcome.
    for (const event of ['CREATED_KYC', 'VERIFIED_USER']) {
      const statuses = await Promise.all(users.flatMap((u) => webs.map((w) => post(w, event, u.externalUserId))));
      expect(statuses.every((s) => s === 200)).toBe(true);
      if (event === 'CREATED_KYC') {
        await waitFor(
          async () => (await tdb.db.selectFrom('users').select('id').where('kycState', '=', 'IN_PROGRESS').execute()).length === N,
          { timeoutMs: 90_000, intervalMs: 500, what: 'all IN_PROGRESS' },
        );
      }
    }
    await waitFor(async () => (await tdb.db.selectFrom('users').select('id').where('kycState', '=', 'VERIFIED').execute()).length === N, {
      timeoutMs: 90_000,
      intervalMs: 500,
      what: 'all VERIFIED',
    });
    await waitFor(
      async () => (await tdb.db.selectFrom('webhookInbox').select('id').where('status', '=', 'received').execute()).length === 0,
      { timeoutMs: 60_000, what: 'inbox drained' },
    );

    for (const u of users) {
      expect((await stateHistory(tdb.db, u.id)).map((h) => h.toState)).toEqual(['IN_PROGRESS', 'VERIFIED']);
    }
    const processed = await tdb.db.selectFrom('webhookInbox').select(['status', 'effect']).execute();
    expect(processed.length).toBe(N * 4);
    expect(processed.filter((p) => p.status === 'failed')).toEqual([]);
    expect(processed.filter((p) => p.effect === 'apply').length).toBe(N * 2);

    // An import run by the same two workers: every row once, no Capa user created twice.
    const M = 150;
    const createsBefore = sandbox.stats().usersCreated;
    const linksBefore = sandbox.stats().linksGenerated;
    const csv = [
      'email,country,sendLink',
      ...Array.from({ length: M }, (_, i) => `${marker}.imp${i}@example.mx,MX,${i % 10 === 0 ? 'yes' : 'no'}`),
    ].join('\n');
    async function* file() {
      yield Buffer.from(csv);
    }
    const staged = await stageImport(tdb.db, {
      source: file(),
      fileName: 'scale.csv',
      createdBy: null,
      limits: { maxBytes: 1e6, maxRows: 1e4 },
    });
    expect(staged.validRows).toBe(M);
    await commitImport(tdb.db, staged.importId, null);
    await waitFor(async () => (await findImport(tdb.db, staged.importId))?.status === 'completed', {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'import completed by two workers',
    });
    const rows = await tdb.db.selectFrom('importRows').select(['status']).where('importId', '=', staged.importId).execute();
    expect(rows.filter((r) => r.status === 'done').length).toBe(M);
    const stats = sandbox.stats();
    expect(stats.usersCreated - createsBefore).toBe(M);
    expect(stats.createUserCalls.duplicates).toBe(0);
    expect(stats.linksGenerated - linksBefore).toBe(M / 10);

    // One scheduler, however many workers: relay-inbox (every 5 s) ran about once per period.
    await new Promise((r) => setTimeout(r, 11_000));
    const seconds = (Date.now() - windowStart) / 1000;
    const relayRuns =
      (await tdb.db.selectFrom('jobRuns').select('id').where('jobName', '=', 'relay-inbox').execute()).length - relayRunsBefore;
    expect(relayRuns).toBeGreaterThanOrEqual(1);
    expect(relayRuns).toBeLessThanOrEqual(Math.ceil(seconds / 5) + 1);

    // No PII outside the database: process output at debug level, and every key in Redis.
    for (const p of procs) expect(p.output()).not.toContain(marker);
    const r = new Redis(redisUrl());
    try {
      let cursor = '0';
      let scanned = 0;
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
        cursor = next;
        for (const k of keys) {
          const type = await r.type(k);
          const dump =
            type === 'hash'
              ? JSON.stringify(await r.hgetall(k))
              : type === 'string'
                ? await r.get(k)
                : type === 'list'
                  ? JSON.stringify(await r.lrange(k, 0, -1))
                  : type === 'zset'
                    ? JSON.stringify(await r.zrange(k, 0, -1))
                    : type === 'set'
                      ? JSON.stringify(await r.smembers(k))
                      : type === 'stream'
                        ? JSON.stringify(await r.xrange(k, '-', '+'))
                        : '';
          expect(dump ?? '').not.toContain(marker);
          scanned++;
        }
      } while (cursor !== '0');
      expect(scanned).toBeGreaterThan(10);
    } finally {
      r.disconnect();
    }
  }, 300_000);
});
