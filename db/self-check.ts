import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { kindOf, type Db } from './client.js';

/**
 * Startup self-check: the guarantees in ARCHITECTURE.md lean on Redis keeping queued jobs
 * (noeviction + persistence) and on SQLite's WAL. Misconfiguration is reported loudly, not
 * silently tolerated; it does not stop the process (a managed Redis may refuse CONFIG).
 */
export async function selfCheck(deps: { redis?: Redis; db?: Db }): Promise<string[]> {
  const warnings: string[] = [];
  if (deps.redis) {
    try {
      const info = await deps.redis.info();
      const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim();
      const policy = field('maxmemory_policy');
      if (policy && policy !== 'noeviction') {
        warnings.push(
          `Redis maxmemory-policy is "${policy}": under memory pressure Redis may evict queued jobs. Set maxmemory-policy noeviction.`,
        );
      }
      const aof = field('aof_enabled') === '1';
      const rdbSaves = (await deps.redis.config('GET', 'save').catch(() => null)) as string[] | null;
      const rdb = rdbSaves ? Boolean(rdbSaves[1]?.trim()) : null;
      if (!aof && rdb !== true) {
        warnings.push(
          'Redis has no persistence (appendonly no, no RDB snapshots): a Redis restart loses queued jobs (the inbox relay re-queues webhooks, but other jobs are lost). Enable appendonly yes.',
        );
      }
    } catch (err) {
      warnings.push(`could not inspect Redis configuration: ${(err as Error).message}`);
    }
  }
  if (deps.db && kindOf(deps.db) === 'sqlite') {
    const raw = deps.db.withoutPlugins(); // pragma result columns are snake_case
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(raw);
    if (mode.rows[0]?.journal_mode?.toLowerCase() !== 'wal')
      warnings.push(`SQLite journal_mode is ${mode.rows[0]?.journal_mode}, expected wal.`);
    const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(raw);
    if ((sync.rows[0]?.synchronous ?? 0) < 1) warnings.push('SQLite synchronous is OFF: acknowledged webhooks could be lost on a crash.');
  }
  return warnings;
}
