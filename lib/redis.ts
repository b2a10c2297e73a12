import { Redis, type RedisOptions } from 'ioredis';

/**
 * Two kinds of Redis connection, as BullMQ recommends:
 *  - producer (web process, intake): fails fast while Redis is down (no offline queue), so
 *    a request answers "queued later" instead of hanging; the inbox/relay covers the gap.
 *  - worker: retries forever (maxRetriesPerRequest null) so workers resume by themselves
 *    after a Redis restart.
 */
export function redisConnection(url: string, kind: 'producer' | 'worker'): Redis {
  const base: RedisOptions = {
    lazyConnect: false,
    connectTimeout: 2_000,
    // Reconnect with a capped backoff; never give up.
    retryStrategy: (times) => Math.min(200 * times, 2_000),
  };
  const opts: RedisOptions =
    kind === 'producer'
      ? { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 }
      : { ...base, maxRetriesPerRequest: null, enableOfflineQueue: true };
  const r = new Redis(url, opts);
  // Connection errors are expected during outages; ioredis retries. Swallow the event so an
  // unhandled 'error' never kills the process.
  r.on('error', () => {});
  return r;
}

export async function pingRedis(r: Redis, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await Promise.race([r.ping(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs))]);
    return res === 'PONG';
  } catch {
    return false;
  }
}
