import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { foldUserCounts, keptCountsByState, type CountFilter } from '../../db/repositories/user-counts.js';
import { countsByState, listUsers } from '../../db/repositories/users-list.js';
import { insertUser } from '../../db/repositories/users.js';
import { KYC_STATES, type KycState } from '../../db/schema.js';
import { createTestDb, postgresAvailable, type TestDb } from '../support/runtime.js';

/**
 * The per-state counts the database keeps (user_counts + the deltas its triggers append) always
 * equal counting the customers, under every filter they serve, before and after a fold, whatever
 * mix of creations, state changes, re-assignments, edits and deletions came first.
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

const FILTERS: CountFilter[] = [
  {},
  { type: 'BUSINESS' },
  { country: 'DO' },
  { country: 'MX', type: 'INDIVIDUAL' },
  { unassigned: true },
  { unassigned: true, country: 'MX' },
];

type Op =
  | { kind: 'create'; type: 'INDIVIDUAL' | 'BUSINESS'; country: 'MX' | 'DO' | null }
  | { kind: 'state'; pick: number; to: KycState }
  | { kind: 'assign'; pick: number; on: boolean }
  | { kind: 'edit'; pick: number; type: 'INDIVIDUAL' | 'BUSINESS'; country: 'MX' | 'DO' | null }
  | { kind: 'delete'; pick: number }
  | { kind: 'fold' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('create' as const),
    type: fc.constantFrom('INDIVIDUAL' as const, 'BUSINESS' as const),
    country: fc.constantFrom('MX' as const, 'DO' as const, null),
  }),
  fc.record({ kind: fc.constant('state' as const), pick: fc.nat(), to: fc.constantFrom(...KYC_STATES) }),
  fc.record({ kind: fc.constant('assign' as const), pick: fc.nat(), on: fc.boolean() }),
  fc.record({
    kind: fc.constant('edit' as const),
    pick: fc.nat(),
    type: fc.constantFrom('INDIVIDUAL' as const, 'BUSINESS' as const),
    country: fc.constantFrom('MX' as const, 'DO' as const, null),
  }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  fc.constant({ kind: 'fold' as const }),
);

for (const kind of kinds) {
  describe(`kept customer counts on ${kind}`, () => {
    let t: TestDb;
    let operatorId = '';
    beforeAll(async () => {
      t = await createTestDb(kind);
      operatorId = (await createOperator(t.db, { email: 'counts@desk.test', name: 'Counts', role: 'admin', password: 'counts-password-1' }))
        .id;
    });
    afterAll(async () => {
      await t?.close();
    });

    /** Counting the customers, the slow way the kept counts replace. */
    const counted = async (f: CountFilter) => {
      let q = t.db.selectFrom('users').select(['kycState', (eb) => eb.fn.countAll<number>().as('n')]);
      if (f.type) q = q.where('type', '=', f.type);
      if (f.country) q = q.where('country', '=', f.country);
      if (f.unassigned) q = q.where('assigneeId', 'is', null);
      const out = Object.fromEntries(KYC_STATES.map((s) => [s, 0])) as Record<KycState, number>;
      for (const r of await q.groupBy('kycState').execute()) out[r.kycState] = Number(r.n);
      return out;
    };
    const pick = async (n: number) => {
      const ids = (await t.db.selectFrom('users').select('id').orderBy('id').execute()).map((r) => r.id);
      return ids.length ? ids[n % ids.length]! : null;
    };

    it('equal counting the customers after any sequence of changes, folded or not', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          for (const op of ops) {
            if (op.kind === 'create') {
              await insertUser(t.db, { email: `c-${randomUUID()}@example.mx`, type: op.type, country: op.country ?? undefined });
              continue;
            }
            if (op.kind === 'fold') {
              await foldUserCounts(t.db);
              continue;
            }
            const id = await pick(op.pick);
            if (!id) continue;
            const u = t.db.updateTable('users').where('id', '=', id);
            if (op.kind === 'state') await u.set({ kycState: op.to }).execute();
            else if (op.kind === 'assign') await u.set({ assigneeId: op.on ? operatorId : null }).execute();
            else if (op.kind === 'edit') await u.set({ type: op.type, country: op.country }).execute();
            else await t.db.deleteFrom('users').where('id', '=', id).execute();
          }
          for (const f of FILTERS) expect(await keptCountsByState(t.db, f), JSON.stringify(f)).toEqual(await counted(f));
        }),
        { numRuns: 40 },
      );
      await foldUserCounts(t.db);
      for (const f of FILTERS) expect(await keptCountsByState(t.db, f)).toEqual(await counted(f));
      expect(await t.db.selectFrom('userCountDeltas').select('id').execute()).toEqual([]);
    });

    it('a fold with nothing to fold changes nothing', async () => {
      await foldUserCounts(t.db);
      const before = await keptCountsByState(t.db);
      expect(await foldUserCounts(t.db)).toBe(0);
      expect(await keptCountsByState(t.db)).toEqual(before);
    });

    it('the users list and the home page use them: their chips equal the customers counted', async () => {
      await insertUser(t.db, { email: `late-${randomUUID()}@example.do`, type: 'BUSINESS', country: 'DO' });
      const all = await listUsers(t.db, {});
      expect(all.countsByState).toEqual(await counted({}));
      expect(all.total).toBe(Object.values(await counted({})).reduce((a, b) => a + b, 0));
      expect((await listUsers(t.db, { country: 'DO', type: 'BUSINESS', assignee: 'none' })).countsByState).toEqual(
        await counted({ country: 'DO', type: 'BUSINESS', unassigned: true }),
      );
      const verified = await listUsers(t.db, { states: ['VERIFIED'], country: 'MX' });
      expect(verified.total).toBe((await counted({ country: 'MX' })).VERIFIED);
      expect(await countsByState(t.db)).toEqual(await counted({}));
    });
  });
}
