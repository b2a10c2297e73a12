import { env } from '../lib/config.js';
import { createDb, migrateToLatest } from './client.js';

const db = createDb(env().DATABASE_URL);
try {
  const applied = await migrateToLatest(db);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
