import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { createDb, kindOf, migrateToLatest, type Db } from '../db/client.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** A private redis-server for one benchmark (noeviction, no persistence: we measure our code). */
export async function startRedis(): Promise<{
  url: string;
  stop(): void;
  version: string;
  pid: number;
  signal(sig: NodeJS.Signals): void;
}> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-bench-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const until = Date.now() + 10_000;
  for (;;) {
    const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    r.on('error', () => {});
    try {
      await r.connect();
      const info = await r.info('server');
      r.disconnect();
      const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
      return {
        url,
        version,
        pid: child.pid!,
        stop: () => {
          child.kill('SIGCONT');
          child.kill('SIGTERM');
        },
        signal: (sig) => {
          child.kill(sig);
        },
      };
    } catch {
      r.disconnect();
      if (Date.now() > until) throw new Error('redis-server did not start');
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

export function tempSqliteUrl(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `kyc-bench-${name}-`));
  return `file:${path.join(dir, 'bench.sqlite')}`;
}

/**
 * Runs a TypeScript file in a child process. `probe`: a file where bench/probe.ts writes the
 * process's PostgreSQL round trips when it exits.
 */
export function spawnTs(file: string, env: Record<string, string>, opts: { inherit?: boolean; probe?: string } = {}): ChildProcess {
  // BENCH_CPU_PROF_DIR=/some/dir writes a V8 CPU profile of each spawned process (profile first, then fix).
  const prof = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const probe = opts.probe ? ['--import', path.resolve('bench/probe.ts')] : [];
  return spawn(process.execPath, [...prof, '--import', 'tsx', ...probe, path.resolve(file)], {
    env: { ...process.env, ...env, ...(opts.probe ? { BENCH_PROBE_FILE: opts.probe } : {}) },
    stdio: opts.inherit ? 'inherit' : ['ignore', 'ignore', 'inherit'],
  });
}

export async function stopChild(c: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (c.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      c.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

/** The 1/5/15-minute load averages, as text: every result carries them (the two cores are shared). */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

export function machineInfo(extra: Record<string, string> = {}) {
  const sqlite = new Database(':memory:');
  const sqliteVersion = (sqlite.prepare('select sqlite_version() v').get() as { v: string }).v;
  sqlite.close();
  return {
    date: new Date().toISOString(),
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    sqlite: sqliteVersion,
    'load average at the end (1 / 5 / 15 min)': loadAverage(),
    ...extra,
  };
}

/**
 * CPU time (user + system, ms) a process has used so far, from /proc (Linux). CPU per job is
 * what a loaded machine changes least, so the benches report it beside the rates.
 */
export function cpuMsOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/**
 * Where results go: bench/results/, or BENCH_RESULTS_DIR for exploratory runs (so a run on a busy
 * machine does not replace the committed figures).
 */
export function resultsDir(): string {
  return path.resolve(process.env.BENCH_RESULTS_DIR ?? 'bench/results');
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Writes bench/results/<name>.json and <name>.md (a markdown table per section). */
export function writeResults(
  name: string,
  data: {
    machine: Record<string, string>;
    sections: Array<{ title: string; rows: Array<Record<string, string | number>>; notes?: string[] }>;
  },
): void {
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(data, null, 2));
  const md: string[] = [
    `# ${name}`,
    '',
    Object.entries(data.machine)
      .map(([k, v]) => `- ${k}: ${v}`)
      .join('\n'),
    '',
  ];
  for (const s of data.sections) {
    md.push(`## ${s.title}`, '');
    if (s.rows.length) {
      const cols = Object.keys(s.rows[0]);
      md.push(`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`);
      for (const r of s.rows) md.push(`| ${cols.map((c) => String(r[c])).join(' | ')} |`);
    }
    if (s.notes?.length) md.push('', ...s.notes.map((n) => `- ${n}`));
    md.push('');
  }
  writeFileSync(path.join(dir, `${name}.md`), md.join('\n'));
  console.log(md.join('\n'));
}

/**
 * The ingest benches' request: a signed ~1 KB CREATED_KYC delivery (a few extra fields, as Capa
 * sends) for a new customer id on every call.
 */
export function signedDeliveries(
  secret: string,
  externalUserId: (n: number) => string = (n) => `bench-${process.pid}-${n}`,
): () => { path: string; body: string; headers: Record<string, string> } {
  let counter = 0;
  const pad = 'x'.repeat(880);
  return () => {
    counter++;
    const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: externalUserId(counter), note: pad });
    return {
      path: '/webhooks/capa',
      body,
      headers: { 'content-type': 'application/json', 'capa-signature': createHmac('sha256', secret).update(body).digest('hex') },
    };
  };
}

/**
 * An open-loop, evenly paced HTTP load: request i is due at t0 + i/rate and its latency is
 * measured from when it was due (so a stalled server cannot hide queueing: no coordinated
 * omission). autocannon's rate mode sends each second's requests in a burst, which measures the
 * burst, not the server; it is used only for the unbounded (closed-loop) throughput figure.
 */
export async function pacedLoad(opts: {
  url: string;
  rate: number;
  seconds: number;
  request: () => { path: string; body: string; headers: Record<string, string> };
  maxSockets?: number;
}) {
  const { default: http } = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 256 });
  const u = new URL(opts.url);
  const total = Math.round(opts.rate * opts.seconds);
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const t0 = performance.now() + 50;
  const cpu0 = process.cpuUsage();
  let next = 0;
  await new Promise<void>((resolve) => {
    let done = 0;
    const finish = () => {
      if (++done === total) resolve();
    };
    const pump = () => {
      const now = performance.now();
      while (next < total && t0 + (next * 1000) / opts.rate <= now) {
        const due = t0 + (next * 1000) / opts.rate;
        next++;
        const r = opts.request();
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            path: r.path,
            method: 'POST',
            agent,
            headers: { ...r.headers, 'content-length': Buffer.byteLength(r.body) },
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              latencies.push(performance.now() - due);
              if (res.statusCode && res.statusCode < 300) ok++;
              else failed++;
              finish();
            });
          },
        );
        req.on('error', () => {
          failed++;
          latencies.push(performance.now() - due);
          finish();
        });
        req.end(r.body);
      }
      if (next < total) setTimeout(pump, Math.max(0, t0 + (next * 1000) / opts.rate - performance.now()));
    };
    pump();
  });
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    target: opts.rate,
    achieved: Math.round(ok / Math.max(elapsed, opts.seconds)),
    p50: Math.round(percentile(latencies, 50) * 10) / 10,
    p99: Math.round(percentile(latencies, 99) * 10) / 10,
    non2xx: failed,
    errors: 0,
    // Share of one core the load generator itself used: it competes with the server for the same two.
    'generator CPU %': Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
  };
}

/**
 * A migrated database for one benchmark: a temp SQLite file, or a private schema in PostgreSQL
 * (BENCH_POSTGRES_URL) dropped by close(). `url` is what child processes get as DATABASE_URL (for
 * PostgreSQL the schema travels in libpq's `options`); `schema` is also given as BENCH_PG_SCHEMA.
 */
export async function benchDatabase(
  engine: 'sqlite' | 'postgres',
  name: string,
): Promise<{ db: Db; url: string; schema?: string; close(): Promise<void> }> {
  if (engine === 'sqlite') {
    const url = tempSqliteUrl(name);
    const db = createDb(url);
    await migrateToLatest(db);
    return { db, url, close: () => db.destroy() };
  }
  const base = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  // Lower case: the search_path in `options` is not quoted, so PostgreSQL folds it to lower case.
  const schema = `bench_${name.toLowerCase().replace(/\W/g, '_')}_${Math.random().toString(16).slice(2, 10)}`;
  const url = `${base}${base.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const db = createDb(url, { schema });
  await migrateToLatest(db, { schema });
  return {
    db,
    url,
    schema,
    async close() {
      await db.withoutPlugins().schema.dropSchema(schema).cascade().execute();
      await db.destroy();
    },
  };
}

/**
 * Seeds customers `cust-<from>` … `cust-<from + n - 1>` (external ids; ids `u-<i>`) in `state`, in
 * one INSERT … SELECT per 100k (the ingest benches address them with signedDeliveries).
 */
export async function seedCustomers(db: Db, n: number, opts: { from?: number; state?: string } = {}): Promise<void> {
  const now = new Date().toISOString();
  const state = opts.state ?? 'LINK_ISSUED';
  const pg = kindOf(db) === 'postgres';
  const CHUNK = 100_000;
  for (let start = opts.from ?? 1, left = n; left > 0; start += CHUNK, left -= CHUNK) {
    const end = start + Math.min(CHUNK, left) - 1;
    const numbers = pg
      ? sql`select i from generate_series(${start}::int, ${end}::int) as g(i)`
      : sql`with recursive seq(i) as (select cast(${start} as integer) union all select i + 1 from seq where i < ${end}) select i from seq`;
    await sql`insert into users (id, external_user_id, capa_user_id, type, email, alias, country, kyc_state, kyc_state_changed_at,
        kyc_state_reason, kyc_state_cause, capa_confirmed_at, capa_sync, capa_sync_error, unmapped_result, link_expired, assignee_id,
        created_by, created_at, updated_at)
      select 'u-' || i, 'cust-' || i, 'capa-' || i, 'INDIVIDUAL', 'cust-' || i || '@example.mx', null, 'MX', ${state}, ${now}, null, null,
        ${now}, 'created', null, null, 0, null, null, ${now}, ${now}
      from (${numbers}) as s`.execute(db.withoutPlugins());
  }
  await sql`analyze`.execute(db);
  // Start the measurement with the seeding's pages in the database file, not in a WAL that the
  // first seconds of the benchmark would have to copy back.
  if (!pg) await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
}
