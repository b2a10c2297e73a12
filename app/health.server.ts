import { sql } from 'kysely';
import { pingRedis } from '../jobs/redis.js';
import { services } from './services.server';

export async function readiness(): Promise<{ ok: boolean; checks: Record<string, { ok: boolean; detail?: string }> }> {
  const s = await services();
  const checks: Record<string, { ok: boolean; detail?: string }> = {};
  try {
    await sql`select 1`.execute(s.db);
    checks.db = { ok: true };
  } catch (err) {
    checks.db = { ok: false, detail: (err as Error).message };
  }
  const redisOk = await pingRedis(s.queues.connection, 1000);
  checks.redis = redisOk ? { ok: true } : { ok: false, detail: 'no answer from Redis' };
  return { ok: Object.values(checks).every((c) => c.ok), checks };
}
