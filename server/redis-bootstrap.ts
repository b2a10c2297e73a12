import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { describeRedisTarget, redisReachable, type RedisTarget } from '../lib/redis.js';

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * `npm start` on a fresh machine: use Redis at REDIS_URL if it answers; otherwise start a
 * private redis-server on that port with its data under ./data/redis (AOF on, noeviction, so
 * queued jobs survive a restart) and stop it on exit. A Sentinel group is never replaced by a
 * private server: it must answer.
 */
export async function ensureRedis(
  target: RedisTarget,
  opts: { autostart: boolean; dataDir: string; log: (m: string) => void },
): Promise<ChildProcess | null> {
  if (await redisReachable(target)) return null;
  if (typeof target !== 'string') {
    throw new Error(
      `Redis is not reachable through ${describeRedisTarget(target)}: no sentinel answered, or none names a reachable primary. Check REDIS_SENTINELS, REDIS_SENTINEL_NAME and the passwords (with REDIS_SENTINELS set, npm start never starts a local redis-server).`,
    );
  }
  const url = target;
  const u = new URL(url);
  const local = ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(u.hostname);
  if (!opts.autostart || !local) {
    throw new Error(
      `Redis is not reachable at ${describeRedisTarget(url)}. Start it, or set REDIS_URL (local autostart is ${local ? 'disabled by REDIS_AUTOSTART=false' : 'only for a local address'}).`,
    );
  }
  if (!hasRedisServer()) {
    throw new Error(
      `Redis is not reachable at ${describeRedisTarget(url)} and redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or point REDIS_URL at a running Redis.`,
    );
  }
  const dir = path.resolve(opts.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = u.port || '6379';
  const child = spawn(
    'redis-server',
    [
      '--port',
      port,
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--maxmemory-policy',
      'noeviction',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (await redisReachable(url)) {
      opts.log(`started a private redis-server on port ${port} (data in ${dir})`);
      return child;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`could not start redis-server on port ${port}`);
}
