import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { selfCheck } from '../../db/self-check.js';
import { freePort } from '../setup/global-setup.js';
import { createTestDb, waitFor } from '../support/runtime.js';

async function privateRedis(args: string[]) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-sc-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...args], { stdio: 'ignore' });
  const redis = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  await waitFor(async () => (await redis.ping()) === 'PONG', { what: 'private redis' });
  return {
    redis,
    stop: () => {
      redis.disconnect();
      child.kill();
    },
  };
}

describe('startup self-check', () => {
  const stops: Array<() => void> = [];
  afterAll(() => stops.forEach((s) => s()));

  it('warns about an evicting Redis without persistence', async () => {
    const r = await privateRedis(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'no', '--save', '']);
    stops.push(r.stop);
    const w = await selfCheck({ redis: r.redis });
    expect(w.join('\n')).toMatch(/maxmemory-policy is "allkeys-lru"/);
    expect(w.join('\n')).toMatch(/no persistence/);
  });

  it('is quiet for noeviction + AOF, and for SQLite in WAL with synchronous on', async () => {
    const r = await privateRedis(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes', '--save', '']);
    stops.push(r.stop);
    const t = await createTestDb('sqlite');
    try {
      expect(await selfCheck({ redis: r.redis, db: t.db })).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
