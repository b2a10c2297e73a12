import { createDb, migrateToLatest, type Db } from '../db/client.js';
import { parseDataKeys, type DataKey } from '../db/encryption.js';
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
}

const KEY = Symbol.for('kyc-desk.services');
type Holder = { [KEY]?: Promise<Services> };
const holder = globalThis as unknown as Holder;

export function services(): Promise<Services> {
  holder[KEY] ??= (async () => {
    const env = readEnv();
    const db = createDb(env.DATABASE_URL);
    await migrateToLatest(db);
    const queues = new Queues({ redisUrl: env.REDIS_URL, prefix: env.QUEUE_PREFIX });
    // Reported once per process, without delaying the first request.
    const report = () => void selfCheck({ redis: queues.connection, db }).then((ws) => ws.forEach((w) => logger.warn(`SELF-CHECK: ${w}`)));
    if (queues.connection.status === 'ready') report();
    else queues.connection.once('ready', report);
    return { env, db, queues, dataKeys: parseDataKeys(env.KYC_DETAILS_KEY), logger };
  })();
  return holder[KEY]!;
}

/** Tests (and the bench) install their own services: real SQLite/PostgreSQL and Redis. */
export function setServices(s: Services | undefined): void {
  if (s) holder[KEY] = Promise.resolve(s);
  else delete holder[KEY];
}
