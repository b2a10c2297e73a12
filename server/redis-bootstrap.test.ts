import { describe, expect, it } from 'vitest';
import { freePort } from '../test/setup/global-setup.js';
import { ensureRedis } from './redis-bootstrap.js';

describe('npm start with Redis Sentinel configured', () => {
  it('refuses to start when no sentinel answers, instead of starting a local redis-server', async () => {
    const port = await freePort();
    const logged: string[] = [];
    await expect(
      ensureRedis(
        { sentinels: [{ host: '127.0.0.1', port }], name: 'kyc', password: 'hunter22' },
        { autostart: true, dataDir: '/nonexistent/kyc-data', log: (m) => logged.push(m) },
      ),
    ).rejects.toThrow(
      `Redis is not reachable through the sentinels at 127.0.0.1:${port} (master group "kyc"): no sentinel answered, or none names a reachable primary. Check REDIS_SENTINELS, REDIS_SENTINEL_NAME and the passwords (with REDIS_SENTINELS set, npm start never starts a local redis-server).`,
    );
    expect(logged).toEqual([]);
  });
});
