import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertUser } from '../../db/repositories/users.js';
import { listUsers, PG_SEARCH_DOCUMENT } from '../../db/repositories/users-list.js';
import { createTestDb, postgresAvailable, type TestDb } from '../support/runtime.js';

/**
 * Users list search on both engines: SQLite looks candidates up in its FTS5 trigram index,
 * PostgreSQL in a pg_trgm GIN index over one expression; both must give the same exact answers.
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

for (const kind of kinds) {
  describe(`users list search on ${kind}`, () => {
    let t: TestDb;
    const emails = (r: { rows: Array<{ email: string }> }) => r.rows.map((x) => x.email).sort();

    beforeAll(async () => {
      t = await createTestDb(kind);
      const seed: Array<{ email: string; externalUserId: string; alias?: string; capa?: string }> = [
        { email: 'maria.lopez@bank.mx', externalUserId: 'ACME-0001', alias: 'María López' },
        { email: 'jose@correo.do', externalUserId: 'acme-0002', alias: 'Pepe' },
        { email: 'ana@bank.mx', externalUserId: 'OTHER-77', capa: 'c0ffee00-1111-2222-3333-444455556666' },
        { email: 'under_score@bank.mx', externalUserId: 'pct-100%', alias: null as unknown as undefined },
        { email: 'tail-mx@site.com', externalUserId: 'zeta-9' },
      ];
      for (let i = 0; i < 40; i++) seed.push({ email: `filler${i}@example.com`, externalUserId: `fill-${i}` });
      for (const s of seed) {
        const u = await insertUser(t.db, {
          email: s.email,
          externalUserId: s.externalUserId,
          alias: s.alias,
          type: 'INDIVIDUAL',
          country: 'MX',
        });
        if (s.capa) await t.db.updateTable('users').set({ capaUserId: s.capa }).where('id', '=', u.id).execute();
      }
    });
    afterAll(async () => {
      await t?.close();
    });

    it('finds a fragment of any searched column, ignoring case', async () => {
      expect(emails(await listUsers(t.db, { q: 'LOPEZ@BANK' }))).toEqual(['maria.lopez@bank.mx']);
      expect(emails(await listUsers(t.db, { q: 'acme-000' }))).toEqual(['jose@correo.do', 'maria.lopez@bank.mx']);
      expect(emails(await listUsers(t.db, { q: 'ffee00-1111' }))).toEqual(['ana@bank.mx']);
      expect(emails(await listUsers(t.db, { q: 'pepe' }))).toEqual(['jose@correo.do']);
      expect((await listUsers(t.db, { q: 'acme-000' })).total).toBe(2);
    });

    it('treats % and _ as plain characters', async () => {
      expect(emails(await listUsers(t.db, { q: '100%' }))).toEqual(['under_score@bank.mx']);
      expect(emails(await listUsers(t.db, { q: 'r_s' }))).toEqual(['under_score@bank.mx']);
      // As LIKE wildcards these would match maria.lopez@bank.mx.
      expect(emails(await listUsers(t.db, { q: 'ma_ia' }))).toEqual([]);
      expect(emails(await listUsers(t.db, { q: 'maria%bank' }))).toEqual([]);
    });

    it('never matches across two columns', async () => {
      // "…@site.com" followed by the external id "zeta-9": the joined text holds "com zeta".
      expect(emails(await listUsers(t.db, { q: 'com zeta' }))).toEqual([]);
      expect(emails(await listUsers(t.db, { q: 'site.com' }))).toEqual(['tail-mx@site.com']);
    });

    it('combines search with state filters and paging', async () => {
      const r = await listUsers(t.db, { q: 'filler', states: ['NOT_STARTED'], pageSize: 15, page: 2, sort: 'email', dir: 'asc' });
      expect(r.total).toBe(40);
      expect(r.rows).toHaveLength(15);
      expect(r.countsByState.NOT_STARTED).toBe(40);
      expect((await listUsers(t.db, { q: 'filler', states: ['VERIFIED'] })).total).toBe(0);
    });

    if (kind === 'postgres') {
      it("the trigram index serves the list's own search expression", async () => {
        const idx = await sql<{
          indexdef: string;
        }>`select indexdef from pg_indexes where tablename = 'users' and indexname = 'users_search_trgm' and schemaname = current_schema()`.execute(
          t.db,
        );
        expect(idx.rows).toHaveLength(1);
        // With sequential scans priced out, a usable index shows in the plan; an expression that
        // drifted from the index's would leave only a scan.
        const plan = await t.db.connection().execute(async (c) => {
          await sql`set enable_seqscan = off`.execute(c);
          try {
            return await sql<{
              'QUERY PLAN': string;
            }>`explain select id from users where (${PG_SEARCH_DOCUMENT}) ilike ${'%lopez%'}`.execute(c);
          } finally {
            await sql`reset enable_seqscan`.execute(c);
          }
        });
        expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('users_search_trgm');
      });
    }
  });
}
