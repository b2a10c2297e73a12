import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { CapaClient } from '../../capa/client.js';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { createDb, migrateToLatest, type Db } from '../../db/client.js';
import { parseDataKeys } from '../../db/encryption.js';
import { Queues } from '../../jobs/queues.js';
import { startWorkers, type RunningWorkers } from '../../jobs/worker.js';
import { parseEnv, type Env } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { webhookIntake, type WebHost } from '../../app/host.server.js';
import { setServices as setSourceServices, type Services } from '../../app/services.server.js';
import express from 'express';
import { capaWebhookRouter } from '../../server/webhook-http.js';

export const WEBHOOK_SECRET = 'test-webhook-secret-1';
export const API_KEY = 'test-partner-key-1';

export function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL not set (the global setup starts a private redis-server)');
  return url;
}

export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True when a PostgreSQL answers; in CI a missing PostgreSQL is a failure, not a skip. */
export async function postgresAvailable(): Promise<boolean> {
  const db = createDb(POSTGRES_URL, { poolSize: 1 });
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    if (process.env.CI) throw new Error(`PostgreSQL is required in CI but did not answer at ${POSTGRES_URL}`);
    console.warn(`[notice] PostgreSQL not reachable at ${POSTGRES_URL}: PostgreSQL tests skipped locally`);
    return false;
  } finally {
    await db.destroy();
  }
}

/**
 * The services a test installed, and the Remix builds it serves. A test reaches the app two ways:
 * facades and routes imported from source (app/services.server.ts here), and a loaded build
 * served over HTTP, which holds its own copy of every app module (server/web.ts takes its
 * services from the build). Both must see the same services.
 */
let installed: Services | undefined;
const servedBuilds = new Set<WebHost>();

/** Installs `s` (or clears) for source imports and for every build this test file serves. */
export function setServices(s: Services | undefined): void {
  installed = s;
  setSourceServices(s);
  for (const host of servedBuilds) host.setServices(s);
}

/** A build about to be served (test/support/web.ts): it gets the installed services, now and later. */
export function serveServicesTo(host: WebHost): void {
  servedBuilds.add(host);
  if (installed) host.setServices(installed);
}

export interface TestDb {
  db: Db;
  url: string;
  kind: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

/** A fresh, migrated database: a temp SQLite file, or a private schema in PostgreSQL. */
export async function createTestDb(kind: 'sqlite' | 'postgres' = 'sqlite'): Promise<TestDb> {
  if (kind === 'postgres') {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const db = createDb(POSTGRES_URL, { schema });
    await migrateToLatest(db, { schema });
    return {
      db,
      url: POSTGRES_URL,
      kind,
      async close() {
        await db.withoutPlugins().schema.dropSchema(schema).cascade().execute();
        await db.destroy();
      },
    };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-db-'));
  const url = `file:${path.join(dir, 'test.sqlite')}`;
  const db = createDb(url);
  await migrateToLatest(db);
  return {
    db,
    url,
    kind,
    async close() {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestRuntime {
  env: Env;
  db: Db;
  queues: Queues;
  capa: CapaClient;
  sandbox: Sandbox;
  services: Services;
  /** URL of the HTTP intake in front of the real route code (POST /webhooks/capa). */
  intakeUrl: string;
  workers: RunningWorkers | null;
  startWorkers(opts?: Parameters<typeof startWorkers>[1]): Promise<RunningWorkers>;
  close(): Promise<void>;
}

/**
 * Everything real: a migrated database, Redis with a private queue prefix, the Capa sandbox over
 * HTTP and an HTTP intake that runs the same webhook route code as the web app.
 */
export async function createTestRuntime(
  opts: { dbKind?: 'sqlite' | 'postgres'; worker?: boolean; env?: Record<string, string>; timeScale?: number } = {},
): Promise<TestRuntime> {
  const tdb = await createTestDb(opts.dbKind ?? 'sqlite');
  const prefix = `t${randomBytes(5).toString('hex')}`;

  // The intake server exists first so the sandbox can be pointed at it.
  let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_q, s) => s.end();
  const intake = http.createServer((q, s) => handler(q, s));
  await new Promise<void>((r) => intake.listen(0, '127.0.0.1', r));
  const intakeUrl = `http://127.0.0.1:${(intake.address() as { port: number }).port}/webhooks/capa`;

  const sandbox = await createSandbox({
    partners: [
      { apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, webhookUrl: intakeUrl },
      { apiKey: 'test-other-partner-key', webhookSecret: 'other-partner-secret', webhookUrl: null },
    ],
    timeScale: opts.timeScale ?? 0.001,
    seed: 42,
  });

  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: tdb.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    CAPA_BASE_URL: sandbox.url,
    CAPA_API_KEY: API_KEY,
    CAPA_WEBHOOK_SECRET: WEBHOOK_SECRET,
    CAPA_RATE_LIMIT_PER_SEC: '200',
    PUBLIC_URL: 'http://127.0.0.1:3999',
    WORKER_CONCURRENCY: '8',
    SHUTDOWN_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'silent',
    ...opts.env,
  });
  const queues = new Queues({ redis: env.redis, prefix });
  const capa = new CapaClient({ baseUrl: sandbox.url, apiKey: API_KEY, timeoutMs: 5000, baseDelayMs: 20, maxDelayMs: 200 });
  const services: Services = { env, db: tdb.db, queues, dataKeys: parseDataKeys(env.KYC_DETAILS_KEY), logger };
  setServices(services);

  // The production intake: the express fast path of server/web.ts, over the same services.
  const app = express();
  app.use(
    capaWebhookRouter(
      webhookIntake(async () => ({ db: services.db, enqueue: services.queues, secrets: services.env.CAPA_WEBHOOK_SECRET })),
    ),
  );
  handler = app;

  const rt: TestRuntime = {
    env,
    db: tdb.db,
    queues,
    capa,
    sandbox,
    services,
    intakeUrl,
    workers: null,
    async startWorkers(o) {
      const w = await startWorkers({ env, db: tdb.db, capa, logger, dataKeys: services.dataKeys, redis: env.redis, prefix }, o);
      rt.workers = w;
      return w;
    },
    async close() {
      await rt.workers?.close(5000);
      await sandbox.close();
      await new Promise<void>((r) => intake.close(() => r()));
      // Remove this test's keys from the shared Redis.
      const conn = queues.connection;
      try {
        let cursor = '0';
        do {
          const [next, keys] = await conn.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await conn.del(...keys);
        } while (cursor !== '0');
      } catch {
        /* Redis may be stopped by the test */
      }
      await queues.close();
      setServices(undefined);
      await tdb.close();
    },
  };
  if (opts.worker !== false) await rt.startWorkers();
  return rt;
}

/** Polls `fn` until it returns a truthy value or the deadline passes (never a blind sleep). */
export async function waitFor<T>(
  fn: () => Promise<T> | T,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const until = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
  throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
}
