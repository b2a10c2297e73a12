import { createDb } from '../db/client.js';

/**
 * Stands in for the worker process's WAL checkpoints during the ingest benchmark: opens the
 * database as a worker does (durability `normal` starts the one-second PASSIVE checkpoint) and
 * waits to be stopped. A process of its own, so the load generator's event loop is not the one
 * copying pages.
 */
const db = createDb(process.env.DATABASE_URL!, { durability: 'normal' });
setInterval(() => {}, 60_000);
process.on('SIGTERM', () => void db.destroy().then(() => process.exit(0)));
