import { describe, expect, it } from 'vitest';
import { freePort } from '../test/setup/global-setup.js';
import { ConfigError, parseEnv } from './config.js';
import { describeRedisTarget, redisReachable } from './redis.js';

/** NODE_ENV is the one variable ProcessEnv requires. */
const envOf = (vars: Record<string, string>) => parseEnv({ NODE_ENV: 'test', ...vars });

function problems(vars: Record<string, string>): string[] {
  try {
    envOf(vars);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a configuration error');
}

describe('Redis target from the environment', () => {
  it('is REDIS_URL without sentinels', () => {
    expect(envOf({ REDIS_URL: 'redis://cache:6380/2' }).redis).toBe('redis://cache:6380/2');
  });

  it('is the Sentinel group when REDIS_SENTINELS is set, whatever REDIS_URL says', () => {
    const e = envOf({
      REDIS_URL: 'redis://elsewhere:6379',
      REDIS_SENTINELS: ' s1.internal:26379, 10.0.0.7:26380 ,[fd00::7]:26381,s4',
      REDIS_SENTINEL_NAME: 'kyc-primary',
      REDIS_PASSWORD: 'data-secret',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
    });
    expect(e.redis).toEqual({
      sentinels: [
        { host: 's1.internal', port: 26379 },
        { host: '10.0.0.7', port: 26380 },
        { host: 'fd00::7', port: 26381 },
        { host: 's4', port: 26379 },
      ],
      name: 'kyc-primary',
      password: 'data-secret',
      sentinelPassword: 'sentinel-secret',
    });
  });

  it('names the variable and what is wrong with it', () => {
    expect(problems({ REDIS_SENTINELS: 's1:26379' })).toEqual([
      expect.stringMatching(/^REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS/),
    ]);
    expect(problems({ REDIS_SENTINELS: 's1:99999,s2:x,:26379', REDIS_SENTINEL_NAME: 'kyc' })).toEqual([
      'REDIS_SENTINELS.0: "s1:99999" is not host:port (e.g. redis-sentinel-1:26379, [::1]:26379)',
      'REDIS_SENTINELS.1: "s2:x" is not host:port (e.g. redis-sentinel-1:26379, [::1]:26379)',
      'REDIS_SENTINELS.2: ":26379" is not host:port (e.g. redis-sentinel-1:26379, [::1]:26379)',
    ]);
    expect(problems({ REDIS_SENTINELS: ' , ', REDIS_SENTINEL_NAME: 'kyc' })).toEqual(['REDIS_SENTINELS: needs at least one host:port']);
    expect(problems({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'my master' })).toEqual([
      expect.stringMatching(/^REDIS_SENTINEL_NAME: the master group name/),
    ]);
    expect(problems({ REDIS_SENTINEL_NAME: 'kyc', REDIS_SENTINEL_PASSWORD: 'x', REDIS_PASSWORD: 'y' })).toEqual([
      'REDIS_SENTINEL_NAME: needs REDIS_SENTINELS (host:port of the sentinels)',
      'REDIS_SENTINEL_PASSWORD: needs REDIS_SENTINELS (host:port of the sentinels)',
      expect.stringMatching(/^REDIS_PASSWORD: is for the Redis behind REDIS_SENTINELS; with REDIS_URL put the password in the URL/),
    ]);
  });

  it('is described without its passwords', () => {
    expect(describeRedisTarget('redis://user:hunter22@cache:6380/2')).toBe('redis://cache:6380/2');
    const text = describeRedisTarget({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 'fd00::7', port: 26381 },
      ],
      name: 'kyc',
      password: 'hunter22',
      sentinelPassword: 'hunter33',
    });
    expect(text).toBe('the sentinels at s1:26379, [fd00::7]:26381 (master group "kyc")');
  });

  it('is reported unreachable when no sentinel answers (the probe asks each sentinel once, no retries)', async () => {
    const [a, b] = [await freePort(), await freePort()];
    expect(
      await redisReachable({
        sentinels: [
          { host: '127.0.0.1', port: a },
          { host: '127.0.0.1', port: b },
        ],
        name: 'kyc',
      }),
    ).toBe(false);
  });
});
