import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { freePort } from '../setup/global-setup.js';
import { startProc, waitHttp, type Proc } from '../support/processes.js';
import { createTestDb, redisUrl, waitFor, type TestDb } from '../support/runtime.js';

/**
 * The all-in-one `npm start` (server/start.ts) as a real process tree: a child that dies is
 * started again (and /readyz says so); a child that keeps crashing stops the launcher with a
 * non-zero exit, taking the other children with it.
 */
const KEY = 'launcher-partner-key';

/** Live processes whose environment carries `marker` (this test's QUEUE_PREFIX). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(marker)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours */
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start: the launcher supervises its children', () => {
  let sandbox: Sandbox;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    sandbox = await createSandbox({ partners: [{ apiKey: KEY, webhookSecret: 'launcher-secret', webhookUrl: null }] });
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await sandbox?.close();
  });

  async function launcher(port: number): Promise<{ proc: Proc; prefix: string }> {
    const tdb: TestDb = await createTestDb('sqlite');
    const prefix = `la${randomBytes(4).toString('hex')}`;
    const proc = startProc('launcher', 'server/start.ts', {
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      REDIS_AUTOSTART: 'false',
      QUEUE_PREFIX: prefix,
      CAPA_BASE_URL: sandbox.url,
      CAPA_API_KEY: KEY,
      CAPA_WEBHOOK_SECRET: 'launcher-secret',
      NODE_ENV: 'production',
      SESSION_SECRET: 'launcher-session-secret-0123456789',
      PORT: String(port),
      SHUTDOWN_TIMEOUT_MS: '3000',
    });
    cleanups.push(
      () => tdb.close(),
      () => proc.stop(),
    );
    return { proc, prefix };
  }

  type Ready = {
    ok: boolean;
    degraded: string[];
    checks: {
      workers: { ok: boolean };
      processes?: {
        ok: boolean;
        detail?: string;
        perProcess: Record<
          string,
          { up: boolean; pid: number; restarts: number; lastExit: { code: number | null; signal: string | null } | null }
        >;
      };
    };
  };
  const readyz = async (url: string): Promise<Ready> => (await (await fetch(`${url}/readyz`)).json()) as Ready;

  it('a worker killed with SIGKILL is started again, /readyz reports the restart, SIGTERM stops everything', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const { proc } = await launcher(port);
    await waitHttp(`${url}/healthz`, 90_000);
    const before = await waitFor(
      async () => {
        const r = await readyz(url);
        return r.checks.processes?.perProcess.worker?.up && r.checks.workers.ok ? r : null;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'launcher report and worker connected' },
    );
    expect(before.checks.processes!.ok).toBe(true);
    const webPid = before.checks.processes!.perProcess.web.pid;
    const oldWorker = before.checks.processes!.perProcess.worker.pid;

    process.kill(oldWorker, 'SIGKILL');
    const after = await waitFor(
      async () => {
        const r = await readyz(url);
        const w = r.checks.processes?.perProcess.worker;
        return w?.up && w.restarts === 1 && w.pid !== oldWorker && r.checks.workers.ok ? r : null;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'worker restarted and connected again' },
    );
    expect(after.checks.processes!.perProcess.worker.lastExit).toMatchObject({ signal: 'SIGKILL' });
    expect(after.checks.processes!.ok).toBe(false); // a recent crash is reported…
    expect(after.degraded).toContain('processes');
    expect(after.checks.processes!.detail).toMatch(/worker restarted 1× in the last 5 minutes \(last killed by SIGKILL/);
    expect(after.ok).toBe(true); // …but does not take the web process out of the load balancer
    expect(after.checks.processes!.perProcess.web).toMatchObject({ pid: webPid, restarts: 0 });
    expect(proc.output()).toMatch(/worker exited unexpectedly \(killed by SIGKILL\); restarting it in 1 s/);
    const newWorker = after.checks.processes!.perProcess.worker.pid;

    const { code } = await proc.stop('SIGTERM');
    expect(code, proc.output()).toBe(0);
    expect(alive(webPid)).toBe(false);
    expect(alive(newWorker)).toBe(false);
  }, 180_000);

  it('a child that crashes at once, again and again, stops the launcher with a non-zero exit and no orphans', async () => {
    // The web port is taken: the web process dies at start every time.
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    const { proc, prefix } = await launcher(port);
    const code = await Promise.race([proc.exited(), new Promise<'still running'>((r) => setTimeout(() => r('still running'), 150_000))]);
    expect(code, proc.output()).toBe(1);
    expect(proc.output()).toMatch(/web exited unexpectedly \(exit code 1\); restarting it in 1 s/);
    expect(proc.output()).toMatch(/web exited unexpectedly \(exit code 1\); restarting it in 8 s/);
    expect(proc.output()).toMatch(/web crashed 5 times within 5 minutes \(last: exit code 1\); stopping everything/);
    // The worker went with it.
    await waitFor(() => processesWith(`QUEUE_PREFIX=${prefix}`).length === 0, {
      timeoutMs: 15_000,
      what: 'no process of this launcher left',
    });
  }, 200_000);
});
