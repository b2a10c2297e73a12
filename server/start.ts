import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createDb, migrateToLatest } from '../db/client.js';
import { env as readEnv } from './config.js';
import { logger } from './logger.js';
import { ensureRedis } from './redis-bootstrap.js';
import { bootstrapOperators } from './bootstrap.js';

/**
 * The all-in-one `npm start`: Redis (reused or started privately), migrations, then the web
 * server, a worker and — when CAPA_BASE_URL is unset — the Capa sandbox, as child processes.
 * Workers never run inside the web process.
 */
const log = logger.child({ proc: 'start' });
const e = readEnv();
const children: Array<{ name: string; child: ChildProcess }> = [];
let redisChild: ChildProcess | null = null;
let stopping = false;

function run(name: string, file: string, extraEnv: Record<string, string> = {}): void {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(file)], {
    stdio: 'inherit',
    env: { ...process.env, KYC_PROCESS: name, ...extraEnv },
  });
  child.on('exit', (code, signal) => {
    if (stopping) return;
    log.error({ name, code, signal }, `${name} exited unexpectedly; stopping everything`);
    void shutdown(1);
  });
  children.push({ name, child });
}

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const { child } of children) child.kill('SIGTERM');
  await Promise.all(children.map(({ child }) => (child.exitCode !== null ? null : new Promise((r) => child.once('exit', r)))));
  redisChild?.kill('SIGTERM');
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  redisChild = await ensureRedis(e.REDIS_URL, { autostart: e.REDIS_AUTOSTART, dataDir: './data', log: (m) => log.info(m) });
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
  run('sandbox', 'capa/sandbox/main.ts', { SANDBOX_WEBHOOK_URL: process.env.SANDBOX_WEBHOOK_URL ?? `http://127.0.0.1:${e.PORT}/webhooks/capa`, ...(e.SMTP_URL ? {} : { SANDBOX_SMTP_PORT: String(e.SANDBOX_SMTP_PORT) }) });
}
run('worker', 'jobs/worker.ts');
run('web', 'server/web.ts');
console.log(`\n  KYC Desk: ${e.publicUrl}${e.usingSandbox ? `   (Capa sandbox: ${e.capaBaseUrl})` : ''}\n`);
