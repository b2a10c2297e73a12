import { createDb, migrateToLatest, type Db } from '../db/client.js';
import { parseDataKeys, type DataKey } from '../db/encryption.js';
import type { CapaCallStats } from '../jobs/capa-metrics.js';
import { Queues } from '../jobs/queues.js';
import { env as readEnv, type Env } from '../lib/config.js';
import { logger, type Logger } from '../lib/logger.js';
import { selfCheck } from '../db/self-check.js';

/**
 * The web process's shared services. Routes reach db/ and jobs/ only through app/*.server.ts
 * facades (the classic compiler's .server protection covers app/ only).
 */
export interface Services {
  env: Env;
  db: Db;
  queues: Queues;
  dataKeys: DataKey[];
  logger: Logger;
  /** The web process's own Capa call figures, created on first use (metrics.server.ts). */
  capaStats?: CapaCallStats;
}

/**
 * One per module instance, and the web process loads this module once: inside the Remix build,
 * which server/web.ts serves and takes its host pieces from (app/host.server.ts through the
 * build's entry module) instead of importing app/ source beside it.
 */
let current: Promise<Services> | undefined;

export function services(): Promise<Services> {
  current ??= (async () => {
    const env = readEnv();
    const db = createDb(env.DATABASE_URL);
    await migrateToLatest(db);
    const queues = new Queues({ redis: env.redis, prefix: env.QUEUE_PREFIX });
    // Reported once per process, without delaying the first request.
    const report = () => void selfCheck({ redis: queues.connection, db }).then((ws) => ws.forEach((w) => logger.warn(`SELF-CHECK: ${w}`)));
    if (queues.connection.status === 'ready') report();
    else queues.connection.once('ready', report);
    return { env, db, queues, dataKeys: parseDataKeys(env.KYC_DETAILS_KEY), logger };
  })();
  return current;
}

/**
 * Tests (and the bench) install their own services: real SQLite/PostgreSQL and Redis. Into this
 * module instance only: a test serving a Remix build installs them into the build's copy too
 * (test/support/runtime.ts).
 */
export function setServices(s: Services | undefined): void {
  current = s ? Promise.resolve(s) : undefined;
}
