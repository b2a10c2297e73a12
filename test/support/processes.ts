import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../setup/global-setup.js';
import { waitFor } from './runtime.js';

/** A real child process of ours (web, worker, sandbox) with its output kept for diagnosis. */
export interface Proc {
  name: string;
  child: ChildProcess;
  output(): string;
  exited(): Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
}

export function startProc(name: string, file: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(file)], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, KYC_PROCESS: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  child.stderr!.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      if (signal) out += `\n[${name} ended by ${signal}]`;
      resolve(code);
    }),
  );
  return {
    name,
    child,
    output: () => out,
    exited: () => exit,
    async stop(signal = 'SIGTERM') {
      const t0 = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await Promise.race([
        exit,
        new Promise<null>((r) =>
          setTimeout(() => {
            child.kill('SIGKILL');
            r(null);
          }, 30_000),
        ),
      ]);
      return { code, ms: Date.now() - t0 };
    },
  };
}

/**
 * A redis-server this test owns, so it can be stopped, started, frozen (SIGSTOP) or killed. With
 * persistence (the default) AOF keeps its data across a restart; without, it comes back empty.
 */
export async function ownRedis(opts: { persistence?: boolean } = {}): Promise<{
  url: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  signal(sig: NodeJS.Signals): void;
  close(): Promise<void>;
}> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-own-redis-'));
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  const persistence = opts.persistence === false ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always'];
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...persistence, '--save', '', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    await waitFor(
      async () => {
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          probe.disconnect();
          return false;
        }
      },
      { what: 'redis-server up' },
    );
    probe.disconnect();
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    if (signal !== 'SIGKILL') c.kill('SIGCONT'); // a frozen server cannot act on SIGTERM
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill(signal);
    });
  };
  await start();
  return {
    url,
    start,
    stop,
    signal: (sig) => {
      child?.kill(sig);
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await fetch(url).catch(() => null))?.ok, { timeoutMs, intervalMs: 200, what: url });
}
