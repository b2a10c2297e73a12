import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../setup/global-setup.js';
import { waitFor } from './runtime.js';

/**
 * A Redis Sentinel group this test owns: one primary, one replica and three sentinels (quorum 2)
 * from Debian's redis-server and redis-sentinel, on free ports, with data and sentinel configs in
 * a temp dir. Nodes run as docs/deploy.md asks (AOF everysec, noeviction, min-replicas-to-write
 * 1), and can be killed and started again; sentinels use short timeouts so a failover takes
 * seconds.
 */
export interface SentinelGroup {
  name: string;
  /** REDIS_SENTINELS / REDIS_SENTINEL_NAME for our processes. */
  env: { REDIS_SENTINELS: string; REDIS_SENTINEL_NAME: string };
  primaryPort: number;
  replicaPort: number;
  /** The primary's port as a majority of the sentinels report it (null while they disagree). */
  currentPrimary(): Promise<number | null>;
  /** Sends a signal to the redis-server on `port` and waits for it to end. */
  kill(port: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts the redis-server on `port` again with its data directory (the sentinels reconfigure it). */
  restart(port: number): Promise<void>;
  /** One command to one node or sentinel. */
  ask(port: number, ...args: Array<string | number>): Promise<unknown>;
  /** Recent output of every process, for failure messages. */
  output(): string;
  close(): Promise<void>;
}

const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 5000;

/** Debian ships redis-sentinel as a link to the same binary; `redis-server --sentinel` is the same program. */
function sentinelCommand(conf: string): [string, string[]] {
  const separate = spawnSync('redis-sentinel', ['--version'], { stdio: 'ignore' }).status === 0;
  return separate ? ['redis-sentinel', [conf]] : ['redis-server', [conf, '--sentinel']];
}

export async function ownSentinelGroup(opts: { name?: string } = {}): Promise<SentinelGroup> {
  const name = opts.name ?? 'kyc';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-sentinel-'));
  const procs = new Map<number, ChildProcess>();
  const logs = new Map<number, string>();
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];

  const ask = async (port: number, ...args: Array<string | number>): Promise<unknown> => {
    const r = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 1000,
    });
    r.on('error', () => {});
    try {
      await r.connect();
      return await r.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      r.disconnect();
    }
  };

  const track = (port: number, what: string, child: ChildProcess) => {
    procs.set(port, child);
    const keep = (d: Buffer) => logs.set(port, ((logs.get(port) ?? '') + d).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => logs.set(port, `${logs.get(port) ?? ''}\n[${what} ${port} ended: ${signal ?? code}]`));
  };

  const startNode = async (port: number) => {
    const data = path.join(dir, String(port));
    mkdirSync(data, { recursive: true });
    const replicaOf = port === replicaPort ? ['--replicaof', '127.0.0.1', String(primaryPort)] : [];
    // A restarted former primary comes back as a primary with its old data; the sentinels turn
    // it into a replica of the new one, which discards that data.
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        data,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        '--min-replicas-to-write',
        '1',
        '--min-replicas-max-lag',
        '10',
        // Test only: a replica's full sync starts at once instead of after 5 s.
        '--repl-diskless-sync-delay',
        '0',
        ...replicaOf,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    track(port, 'redis-server', child);
    await waitFor(async () => (await ask(port, 'PING')) === 'PONG', { timeoutMs: 10_000, what: `redis-server on ${port}` });
  };

  const startSentinel = async (port: number) => {
    const data = path.join(dir, `sentinel-${port}`);
    mkdirSync(data, { recursive: true });
    const conf = path.join(data, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${data}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${name} ${FAILOVER_TIMEOUT_MS}`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const [cmd, args] = sentinelCommand(conf);
    track(port, 'redis-sentinel', spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  };

  const currentPrimary = async (): Promise<number | null> => {
    const votes = new Map<number, number>();
    for (const p of sentinelPorts) {
      try {
        const addr = (await ask(p, 'SENTINEL', 'get-master-addr-by-name', name)) as [string, string] | null;
        if (addr) votes.set(Number(addr[1]), (votes.get(Number(addr[1])) ?? 0) + 1);
      } catch {
        /* a sentinel down */
      }
    }
    for (const [port, n] of votes) if (n >= 2) return port;
    return null;
  };

  const kill = async (port: number, signal: NodeJS.Signals = 'SIGTERM') => {
    const c = procs.get(port);
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill(signal);
    });
  };

  const group: SentinelGroup = {
    name,
    env: { REDIS_SENTINELS: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','), REDIS_SENTINEL_NAME: name },
    primaryPort,
    replicaPort,
    currentPrimary,
    kill,
    restart: startNode,
    ask,
    output: () => [...logs.entries()].map(([p, l]) => `--- ${p}\n${l}`).join('\n'),
    async close() {
      for (const p of [...sentinelPorts, primaryPort, replicaPort]) await kill(p, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await startNode(primaryPort);
    await startNode(replicaPort);
    await waitFor(async () => /master_link_status:up/.test(String(await ask(replicaPort, 'INFO', 'replication'))), {
      timeoutMs: 15_000,
      what: 'the replica in sync with the primary',
    });
    for (const p of sentinelPorts) await startSentinel(p);
    // A failover needs every sentinel to know the replica (learnt from the primary's INFO) and
    // the other sentinels (learnt over the primary's hello channel, every 2 s).
    await waitFor(
      async () => {
        for (const p of sentinelPorts) {
          const master = (await ask(p, 'SENTINEL', 'master', name)) as string[];
          const field = (k: string) => Number(master[master.indexOf(k) + 1]);
          if (field('num-slaves') < 1 || field('num-other-sentinels') < 2) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'three sentinels that know the replica and each other' },
    );
  } catch (err) {
    const out = group.output();
    await group.close();
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  return group;
}
