import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../db/group-commit.js';
import { insertUser } from '../../db/repositories/users.js';
import { createTestDb, postgresAvailable, type TestDb } from '../support/runtime.js';

const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

async function aliasOf(t: TestDb, id: string): Promise<string | null> {
  return (await t.db.selectFrom('users').select('alias').where('id', '=', id).executeTakeFirstOrThrow()).alias;
}

for (const kind of kinds) {
  describe(`group commit on ${kind}`, () => {
    let t: TestDb;
    beforeAll(async () => {
      t = await createTestDb(kind);
    });
    afterAll(async () => {
      await t?.close();
    });

    it("one caller's error undoes only that caller's writes; the others commit and get their results", async () => {
      const users = await Promise.all(
        [0, 1, 2, 3].map((i) => insertUser(t.db, { email: `gc-${kind}-${i}@example.mx`, type: 'INDIVIDUAL' })),
      );
      const gc = new GroupCommit(t.db);
      const results = await Promise.allSettled(
        users.map((u, i) =>
          gc.run(async (trx) => {
            await trx
              .updateTable('users')
              .set({ alias: `renamed-${i}` })
              .where('id', '=', u.id)
              .execute();
            if (i === 2) throw new Error('caller 2 fails after writing');
            return i * 10;
          }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual([0, 10, 30]);
      expect((results[2] as PromiseRejectedResult).reason.message).toBe('caller 2 fails after writing');
      expect(await Promise.all(users.map((u) => aliasOf(t, u.id)))).toEqual(['renamed-0', 'renamed-1', null, 'renamed-3']);
    });

    it('a constraint violation in one caller does not poison the shared transaction', async () => {
      const a = await insertUser(t.db, { email: `gc-${kind}-a@example.mx`, type: 'INDIVIDUAL' });
      const b = await insertUser(t.db, { email: `gc-${kind}-b@example.mx`, type: 'INDIVIDUAL' });
      const gc = new GroupCommit(t.db);
      const [r1, r2, r3] = await Promise.allSettled([
        gc.run((trx) => trx.updateTable('users').set({ alias: 'first' }).where('id', '=', a.id).execute()),
        // Unique index on email: fails inside the database, not in our code.
        gc.run((trx) => trx.updateTable('users').set({ email: a.email }).where('id', '=', b.id).execute()),
        gc.run((trx) => trx.updateTable('users').set({ alias: 'third' }).where('id', '=', b.id).execute()),
      ]);
      expect([r1.status, r2.status, r3.status]).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(await aliasOf(t, a.id)).toBe('first');
      const rowB = await t.db.selectFrom('users').select(['email', 'alias']).where('id', '=', b.id).executeTakeFirstOrThrow();
      expect(rowB).toEqual({ email: b.email, alias: 'third' });
    });

    if (kind === 'sqlite') {
      it('callers that arrive together share one transaction and are answered only after its COMMIT', async () => {
        const users = await Promise.all(
          [0, 1, 2, 3, 4].map((i) => insertUser(t.db, { email: `gc-share-${i}@example.mx`, type: 'INDIVIDUAL' })),
        );
        // A second connection sees only committed data.
        const outside = new SQLite(t.url.replace(/^file:/, ''), { readonly: true });
        try {
          const seenOutside: Array<string | null> = [];
          const gc = new GroupCommit(t.db);
          const done: number[] = [];
          await Promise.all(
            users.map((u, i) =>
              gc
                .run(async (trx) => {
                  await trx
                    .updateTable('users')
                    .set({ alias: `batched-${i}` })
                    .where('id', '=', u.id)
                    .execute();
                  // The five arrived in the same turn of the event loop and share one transaction:
                  // caller 1's write is not yet visible to another connection while callers 2–4
                  // run, because it is still open.
                  if (i > 1)
                    seenOutside.push(
                      (outside.prepare('select alias from users where id = ?').get(users[1].id) as { alias: string | null }).alias,
                    );
                  return i;
                })
                .then((i) => {
                  done.push(i);
                  // Answered after the commit: now the other connection sees every caller's write.
                  const row = outside.prepare('select alias from users where id = ?').get(u.id) as { alias: string | null };
                  expect(row.alias).toBe(`batched-${i}`);
                }),
            ),
          );
          expect(seenOutside).toEqual([null, null, null]);
          expect(done.sort()).toEqual([0, 1, 2, 3, 4]);
        } finally {
          outside.close();
        }
      });
    }
  });
}
