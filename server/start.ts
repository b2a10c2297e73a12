import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { LauncherChild, LauncherReport } from '../app/health.server.js';
import { createDb, migrateToLatest } from '../db/client.js';
import { env as readEnv } from '../lib/config.js';
import { logger } from '../lib/logger.js';
import { ensureRedis } from './redis-bootstrap.js';
import { bootstrapOperators } from './bootstrap.js';

/**
 * The all-in-one `npm start`: Redis (reused or started privately), migrations, then the web
 * server, a worker and — when CAPA_BASE_URL is unset — the Capa sandbox, as child processes.
 * Workers never run inside the web process.
 *
 * A child that dies is started again after a backoff (1 s, 2 s, 4 s … at most 30 s), and the web
 * process is told so (its /readyz reports each child's restarts). Only a crash loop — CRASH_LOOP
 * crashes of one child within CRASH_WINDOW_MS — stops everything, with exit code 1: a child that
 * cannot start (port taken, bad database) would otherwise be restarted forever.
 */
const CRASH_LOOP = 5;
const CRASH_WINDOW_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 30_000;

const log = logger.child({ proc: 'start' });
const e = readEnv();

interface Supervised {
  name: string;
  file: string;
  env: Record<string, string>;
  child: ChildProcess | null;
  startedAt: string;
  restarts: number;
  /** When this child crashed recently (inside CRASH_WINDOW_MS). */
  crashes: number[];
  lastExit: LauncherChild['lastExit'];
  restartTimer: NodeJS.Timeout | null;
}

const supervised: Supervised[] = [];
let redisChild: ChildProcess | null = null;
let stopping = false;

function report(): LauncherReport {
  return {
    kind: 'kyc-launcher',
    crashLoop: { crashes: CRASH_LOOP, windowMinutes: CRASH_WINDOW_MS / 60_000 },
    children: supervised.map((s) => ({
      name: s.name,
      up: s.child !== null && s.child.exitCode === null && s.child.signalCode === null,
      pid: s.child?.pid ?? null,
      startedAt: s.startedAt,
      restarts: s.restarts,
      recentCrashes: s.crashes.length,
      lastExit: s.lastExit,
    })),
  };
}

/** The web process keeps the latest report for /readyz (app/health.server.ts). */
function tellWeb(): void {
  for (const s of supervised) {
    if (s.name === 'web' && s.child?.connected) s.child.send(report(), () => {});
  }
}

function start(s: Supervised): void {
  s.restartTimer = null;
  s.startedAt = new Date().toISOString();
  // Only the web process gets a channel to us: it asks for the report when it starts.
  const ipc = s.name === 'web';
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(s.file)], {
    stdio: ipc ? ['inherit', 'inherit', 'inherit', 'ipc'] : 'inherit',
    env: { ...process.env, KYC_PROCESS: s.name, ...s.env },
  });
  s.child = child;
  if (ipc) {
    child.on('message', (m) => {
      if ((m as { kind?: string })?.kind === 'kyc-launcher-hello') child.send(report(), () => {});
    });
  }
  child.on('exit', (code, signal) => onExit(s, child, code, signal));
  tellWeb();
}

function onExit(s: Supervised, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
  if (stopping || s.child !== child) return;
  const now = Date.now();
  s.lastExit = { code, signal, at: new Date(now).toISOString() };
  s.crashes = [...s.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
  const how = signal ? `killed by ${signal}` : `exit code ${code}`;
  if (s.crashes.length >= CRASH_LOOP) {
    log.error(
      { name: s.name, code, signal, crashes: s.crashes.length },
      `${s.name} crashed ${s.crashes.length} times within ${CRASH_WINDOW_MS / 60_000} minutes (last: ${how}); stopping everything`,
    );
    void shutdown(1);
    return;
  }
  const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (s.crashes.length - 1));
  s.restarts++;
  log.error(
    { name: s.name, code, signal, restart: s.restarts, delayMs: delay },
    `${s.name} exited unexpectedly (${how}); restarting it in ${delay / 1000} s`,
  );
  tellWeb();
  s.restartTimer = setTimeout(() => {
    if (stopping) return;
    log.warn({ name: s.name, restart: s.restarts }, `restarting ${s.name}`);
    start(s);
  }, delay);
}

function run(name: string, file: string, extraEnv: Record<string, string> = {}): void {
  const s: Supervised = {
    name,
    file,
    env: extraEnv,
    child: null,
    startedAt: '',
    restarts: 0,
    crashes: [],
    lastExit: null,
    restartTimer: null,
  };
  supervised.push(s);
  start(s);
}

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const s of supervised) if (s.restartTimer) clearTimeout(s.restartTimer);
  const live = supervised.map((s) => s.child).filter((c): c is ChildProcess => c !== null && c.exitCode === null && c.signalCode === null);
  for (const c of live) c.kill('SIGTERM');
  await Promise.all(live.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  redisChild?.kill('SIGTERM');
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  redisChild = await ensureRedis(e.redis, { autostart: e.REDIS_AUTOSTART, dataDir: './data', log: (m) => log.info(m) });
  const db = createDb(e.DATABASE_URL);
  await migrateToLatest(db);
  await bootstrapOperators(db, e, (m) => console.log(m));
  await db.destroy();
} catch (err) {
  console.error(`KYC Desk cannot start: ${(err as Error).message}`);
  redisChild?.kill('SIGTERM');
  process.exit(1);
}

if (e.usingSandbox) {
  // Without SMTP_URL the worker sends mail to the sandbox's sink on SANDBOX_SMTP_PORT.
  run('sandbox', 'capa/sandbox/main.ts', {
    SANDBOX_WEBHOOK_URL: process.env.SANDBOX_WEBHOOK_URL ?? `http://127.0.0.1:${e.PORT}/webhooks/capa`,
    ...(e.SMTP_URL ? {} : { SANDBOX_SMTP_PORT: String(e.SANDBOX_SMTP_PORT) }),
  });
}
run('worker', 'jobs/worker.ts');
run('web', 'server/web.ts');
console.log(`\n  KYC Desk: ${e.publicUrl}${e.usingSandbox ? `   (Capa sandbox: ${e.capaBaseUrl})` : ''}\n`);
