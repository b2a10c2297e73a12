import { writeFileSync } from 'node:fs';
import pg from 'pg';

/**
 * Loaded with `--import` into a process under benchmark (spawnTs with `probe`): counts the
 * PostgreSQL round trips it makes (every pg Client.query, BEGIN and COMMIT included), by the
 * statement's first words, and writes them to BENCH_PROBE_FILE when the process exits. Round
 * trips per job is the figure a loaded machine does not change.
 */
const file = process.env.BENCH_PROBE_FILE;
const counts = new Map<string, number>();
let total = 0;

const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0];
  const text = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '');
  const key = text.replace(/\s+/g, ' ').trim().slice(0, 60);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  total++;
  return query.apply(this, args);
} as typeof pg.Client.prototype.query;

if (file) {
  process.on('exit', () => {
    const byStatement = Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1]));
    writeFileSync(file, JSON.stringify({ total, byStatement }, null, 2));
  });
}
