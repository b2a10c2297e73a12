import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../db/client.js';
import { claimNext } from '../../db/repositories/cases.js';
import { insertUser } from '../../db/repositories/users.js';
import { createTestDb, postgresAvailable, type TestDb } from '../support/runtime.js';

/**
 * Claim-next under concurrency: two sessions (two processes, each with its own connection, as two
 * web processes would be) claim at the same moment, round after round, against the same database.
 * Nobody may ever get a case somebody else got.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

async function seedOperator(t: TestDb, email: string): Promise<string> {
  const id = `op-${email}`;
  const now = new Date().toISOString();
  await t.db
    .insertInto('operators')
    .values({ id, email, name: email, role: 'compliance', passwordHash: 'x', disabled: 0, createdAt: now, updatedAt: now })
    .execute();
  return id;
}

async function seedReviewCases(t: TestDb, n: number, tag: string, country: 'MX' | 'DO' = 'MX'): Promise<string[]> {
  const ids: string[] = [];
  const base = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < n; i++) {
    const u = await insertUser(t.db, { email: `${tag}-${i}@example.mx`, type: 'INDIVIDUAL', country });
    // Several cases share a timestamp: ties are broken by id, and both sessions still meet on the same candidate.
    const at = new Date(base + Math.floor(i / 3) * 60_000).toISOString();
    await t.db
      .updateTable('users')
      .set({ kycState: i % 4 === 3 ? 'REJECTED' : 'REVIEW_NEEDED', kycStateChangedAt: at })
      .where('id', '=', u.id)
      .execute();
    ids.push(u.id);
  }
  return ids;
}

const CHILD = `
import { createInterface } from 'node:readline';
import { createDb } from ${JSON.stringify(path.join(ROOT, 'db/client.ts'))};
import { claimNext } from ${JSON.stringify(path.join(ROOT, 'db/repositories/cases.ts'))};
const [url, schema, opId] = process.argv.slice(2);
const db = createDb(url, schema ? { schema, poolSize: 2 } : {});
const rl = createInterface({ input: process.stdin });
process.stdout.write('ready\\n');
for await (const line of rl) {
  if (line === 'exit') break;
  try {
    const r = await claimNext(db, { id: opId, label: opId });
    process.stdout.write(JSON.stringify({ ok: true, r }) + '\\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.message || err) }) + '\\n');
  }
}
await db.destroy();
process.exit(0);
`;

class Session {
  private lines: string[] = [];
  private waiters: Array<(l: string) => void> = [];
  constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }
  next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('claim session did not answer in 20 s')), 20_000);
      this.waiters.push((x) => {
        clearTimeout(timer);
        resolve(x);
      });
    });
  }
}

for (const kind of kinds) {
  describe(`claim next on ${kind}`, () => {
    let t: TestDb;
    let dir: string;
    let schema = '';
    beforeAll(async () => {
      t = await createTestDb(kind);
      dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-claim-'));
      writeFileSync(path.join(dir, 'claimer.mts'), CHILD);
      if (kind === 'postgres') {
        const r = await t.db.selectNoFrom((eb) => eb.fn<string>('current_schema', []).as('s')).executeTakeFirstOrThrow();
        schema = r.s;
      }
    });
    afterAll(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('two sessions claiming at the same moment, many rounds, never get the same case', async () => {
      const ROUNDS = 40;
      const ops = [await seedOperator(t, 'ana@desk.test'), await seedOperator(t, 'bo@desk.test')];
      const cases = await seedReviewCases(t, ROUNDS * 2 - 3, 'race'); // the last rounds run out of cases
      const sessions = ops.map((op) => {
        const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(dir, 'claimer.mts'), t.url, schema, op], {
          cwd: ROOT,
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        child.on('exit', (code) => {
          if (code) console.error(`claim session exited ${code}: ${err}`);
        });
        return new Session(child);
      });
      try {
        expect(await Promise.all(sessions.map((s) => s.next()))).toEqual(['ready', 'ready']);
        const got: Array<{ op: string; userId: string }> = [];
        let nulls = 0;
        for (let round = 0; round < ROUNDS; round++) {
          for (const s of sessions) s.child.stdin.write('go\n');
          const answers = (await Promise.all(sessions.map((s) => s.next()))).map(
            (l) => JSON.parse(l) as { ok: boolean; error?: string; r: { userId: string } | null },
          );
          answers.forEach((a, i) => {
            expect(a.error ?? null).toBeNull();
            expect(a.ok).toBe(true);
            if (a.r) got.push({ op: ops[i]!, userId: a.r.userId });
            else nulls++;
          });
        }
        // Every case claimed exactly once, and the two empty answers came only when none were left.
        expect(new Set(got.map((g) => g.userId)).size).toBe(got.length);
        expect(got.map((g) => g.userId).sort()).toEqual([...cases].sort());
        expect(nulls).toBe(ROUNDS * 2 - cases.length);
        // The database agrees with what each session was told.
        const rows = await t.db.selectFrom('users').select(['id', 'assigneeId']).where('id', 'in', cases).execute();
        const owner = new Map(rows.map((r) => [r.id, r.assigneeId]));
        for (const g of got) expect(owner.get(g.userId)).toBe(g.op);
        const claimedEvents = await t.db
          .selectFrom('caseEvents')
          .select(['userId'])
          .where('kind', '=', 'claimed')
          .where('userId', 'in', cases)
          .execute();
        expect(claimedEvents.length).toBe(cases.length);
      } finally {
        for (const s of sessions) s.child.stdin.end('exit\n');
        await Promise.all(sessions.map((s) => new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r)))));
      }
    });

    it('many concurrent claims through one handle (one web process): distinct cases, losers move on to the next', async () => {
      const ops = [await seedOperator(t, 'cy@desk.test'), await seedOperator(t, 'di@desk.test'), await seedOperator(t, 'ed@desk.test')];
      const cases = await seedReviewCases(t, 30, 'burst', 'DO');
      // On PostgreSQL a second pool takes part too. (Two SQLite connections in one thread would
      // block each other inside the synchronous driver; cross-process SQLite is the test above.)
      const other = kind === 'postgres' ? createDb(t.url, { schema, poolSize: 4 }) : t.db;
      try {
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) => claimNext(i % 2 ? other : t.db, { id: ops[i % 3]!, label: ops[i % 3]! }, { country: 'DO' })),
        );
        const ids = results.map((r) => r?.userId);
        expect(ids.every(Boolean)).toBe(true);
        expect(new Set(ids).size).toBe(30);
        expect([...ids].sort()).toEqual([...cases].sort());
        // Everybody started from the same oldest candidate, so the conditional UPDATE turned some away.
        expect(results.reduce((n, r) => n + (r?.lostRaces ?? 0), 0)).toBeGreaterThan(0);
        expect(await claimNext(t.db, { id: ops[0]!, label: ops[0]! }, { country: 'DO' })).toBeNull();
      } finally {
        if (other !== t.db) await other.destroy();
      }
    });
  });
}
