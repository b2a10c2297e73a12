import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * When REDIS_URL is unset, start a private redis-server on a free port for the whole run, so
 * tests never touch a developer's Redis. Each test file still uses its own queue prefix.
 */
let child: ChildProcess | undefined;
let dir: string | undefined;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not listen on ${port} within ${deadlineMs} ms`);
}

export default async function setup(): Promise<() => void> {
  process.env.NODE_ENV = 'test';
  // One Remix build for the whole run: e2e and process tests load build/index.js; building in
  // each file would race on the same folder.
  if (process.env.KYC_TEST_SKIP_BUILD !== '1') {
    execFileSync(path.resolve('node_modules/.bin/remix'), ['build'], { stdio: 'pipe' });
  }
  if (!process.env.REDIS_URL) {
    const port = await freePort();
    dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-redis-'));
    // noeviction + appendonly mirror what production must run with (see docs/deploy.md).
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', dir],
      { stdio: 'ignore' },
    );
    child.on('error', (err) => {
      console.error('could not start redis-server (apt-get install redis-server):', err.message);
    });
    await waitForPort(port, 10_000);
    process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
    process.env.TEST_REDIS_PRIVATE = '1';
  }
  return () => {
    child?.kill('SIGTERM');
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}
