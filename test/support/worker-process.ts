import { CapaClient } from '../../capa/client.js';
import { createDb } from '../../db/client.js';
import { startWorkers } from '../../jobs/worker.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';

/**
 * A real, separate worker process for crash tests: `node --import tsx test/support/worker-process.ts`
 * with the usual environment (DATABASE_URL, REDIS_URL, QUEUE_PREFIX, CAPA_BASE_URL, …). Prints
 * "ready" on stdout once its workers run; SIGKILL it to simulate a crash.
 */
const env = parseEnv(process.env);
const db = createDb(env.DATABASE_URL);
const capa = new CapaClient({ baseUrl: env.capaBaseUrl, apiKey: env.CAPA_API_KEY, timeoutMs: 5000, baseDelayMs: 20, maxDelayMs: 200 });
const running = await startWorkers({ env, db, capa, logger, redis: env.redis, prefix: env.QUEUE_PREFIX });
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void running
    .close(2000)
    .then(() => db.destroy())
    .then(() => process.exit(0));
});
