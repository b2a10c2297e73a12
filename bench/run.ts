import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * `npm run bench`: every benchmark in turn, each in its own process (so one's memory and event
 * loop never colour another's), results in bench/results/<name>.{json,md}.
 * `npm run bench -- ingest processing` runs only the named ones.
 */
const ALL = [
  'ingest',
  'ingest-postgres',
  'ingest-redis-frozen',
  'processing',
  'processing-postgres',
  'time-to-truth',
  'time-to-truth-postgres',
  'users-list',
  'users-list-postgres',
  'imports',
  'refresh',
  'notifications',
  'notifications-postgres',
  'alerts',
];
// Benchmarks that are another one run with arguments.
const VARIANTS: Record<string, { file: string; args: string[] }> = {
  'ingest-postgres': { file: 'ingest', args: ['--engine', 'postgres'] },
  'users-list-postgres': { file: 'users-list', args: ['--engine', 'postgres'] },
  'processing-postgres': { file: 'processing', args: ['--engine', 'postgres'] },
  'time-to-truth-postgres': { file: 'time-to-truth', args: ['--engine', 'postgres'] },
  'notifications-postgres': { file: 'notifications', args: ['--engine', 'postgres'] },
};
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : ALL;

const build = spawnSync(path.resolve('node_modules/.bin/remix'), ['build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const summary: Array<{ name: string; status: string; seconds: number }> = [];
for (const name of names) {
  const variant = VARIANTS[name];
  const file = path.resolve('bench', `${variant?.file ?? name}.ts`);
  if (!existsSync(file)) {
    summary.push({ name, status: 'missing', seconds: 0 });
    continue;
  }
  console.log(`\n=== bench: ${name} ===`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...(variant?.args ?? [])], {
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'production', SESSION_SECRET: process.env.SESSION_SECRET || 'bench-session-secret-0123456789' },
  });
  summary.push({ name, status: r.status === 0 ? 'ok' : `exit ${r.status ?? r.signal}`, seconds: Math.round((Date.now() - t0) / 1000) });
}
console.log('\n=== summary ===');
for (const s of summary) console.log(`${s.name.padEnd(24)} ${s.status.padEnd(8)} ${s.seconds}s  bench/results/${s.name}.md`);
process.exit(summary.some((s) => s.status !== 'ok') ? 1 : 0);
