import { Redis, type RedisOptions } from 'ioredis';

/** A Redis Sentinel group: the sentinels name the current primary, and name the new one after a failover. */
export interface SentinelTarget {
  sentinels: Array<{ host: string; port: number }>;
  /** The master group name the sentinels monitor (`sentinel monitor <name> …`). */
  name: string;
  /** AUTH for the primary and its replicas. */
  password?: string;
  /** AUTH for the sentinels themselves. */
  sentinelPassword?: string;
}

/** Where Redis is: a redis:// URL, or a Sentinel group. lib/config.ts derives it from the environment. */
export type RedisTarget = string | SentinelTarget;

export type RedisConnectionKind = 'producer' | 'worker' | 'probe';

/** For messages and logs: never carries a password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (typeof target !== 'string') {
    return `the sentinels at ${target.sentinels.map((s) => `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`).join(', ')} (master group "${target.name}")`;
  }
  try {
    const u = new URL(target);
    u.password = '';
    u.username = '';
    return u.toString();
  } catch {
    return 'REDIS_URL';
  }
}

/** A demoted primary refuses writes with READONLY (also inside Lua scripts, which BullMQ runs). */
function refusedAsReplica(err: Error): boolean {
  return err.message.includes('READONLY');
}

/**
 * The one place that creates Redis connections. Three kinds, as BullMQ recommends:
 *  - producer (web process, intake): fails fast while Redis is down (no offline queue), so
 *    a request answers "queued later" instead of hanging; the inbox/relay covers the gap.
 *  - worker: retries forever (maxRetriesPerRequest null) so workers resume by themselves
 *    after a Redis restart or a failover.
 *  - probe: one attempt, no retries (the launcher's "is Redis there?" check).
 *
 * With a Sentinel group, every (re)connect asks the sentinels for the current primary and checks
 * its role (the ready check reads INFO), so a failover costs a reconnect, not a restart.
 */
export function redisConnection(target: RedisTarget, kind: RedisConnectionKind): Redis {
  const backoff = (times: number) => Math.min(200 * times, 2_000);
  const base: RedisOptions = {
    lazyConnect: false,
    connectTimeout: 2_000,
    // Reconnect with a capped backoff; never give up.
    retryStrategy: backoff,
    // Sentinel mode relies on it: a node that answers INFO with role:slave is not taken as the
    // primary (sentinels that have not yet noticed a failover still name the old one).
    enableReadyCheck: true,
    // A connection that outlived a failover can still reach the old primary, now a replica (it
    // came back, or only this client's link to it survived a partition): its writes are refused
    // with READONLY. Reconnecting asks the sentinels again. A worker resends the refused command
    // once reconnected (2: safe, the replica did not run it); a producer fails it at once (1),
    // like any other outage, and the relay queues from the database.
    reconnectOnError: (err) => (refusedAsReplica(err) ? (kind === 'worker' ? 2 : 1) : false),
  };
  const byKind: Record<RedisConnectionKind, RedisOptions> = {
    producer: { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 },
    worker: { maxRetriesPerRequest: null, enableOfflineQueue: true },
    probe: { lazyConnect: true, connectTimeout: 1_000, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null },
  };
  const opts: RedisOptions = { ...base, ...byKind[kind] };
  const r =
    typeof target === 'string'
      ? new Redis(target, opts)
      : new Redis({
          ...opts,
          sentinels: target.sentinels,
          name: target.name,
          role: 'master',
          ...(target.password ? { password: target.password } : {}),
          ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
          // Asked again from scratch when no sentinel answers; a probe asks once.
          sentinelRetryStrategy: kind === 'probe' ? () => null : backoff,
          // A frozen sentinel must not hold a (re)connect: the next one is asked instead.
          sentinelCommandTimeout: 1_000,
          // Off (ioredis's default): its +switch-master subscription disconnects the connection
          // even while that connection is re-resolving the primary, and ioredis then ends it for
          // good ("Connection is closed", never retried). A primary that crashes closes its
          // sockets, and a demoted one answers READONLY (above), so both reconnect without it.
          failoverDetector: false,
        });
  // Connection errors are expected during outages and failovers; ioredis retries. Swallow the
  // event so an unhandled 'error' never kills the process.
  r.on('error', () => {});
  return r;
}

/** One attempt to reach Redis (through the sentinels when configured); for start-up checks. */
export async function redisReachable(target: RedisTarget): Promise<boolean> {
  const r = redisConnection(target, 'probe');
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

export async function pingRedis(r: Redis, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await Promise.race([r.ping(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs))]);
    return res === 'PONG';
  } catch {
    return false;
  }
}
