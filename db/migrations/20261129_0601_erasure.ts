import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../migration-helpers.js';

/**
 * Data protection: a legal hold on a customer (blocks erasure and retention), the moment their
 * personal data was erased (the row stays as a non-personal tombstone so state history, case ids
 * and the audit chain keep pointing at something), and one row per erasure with its report.
 * Case notes and case events stay append-only with one exception: an erasure may blank a note's
 * body or an event's detail, and change nothing else.
 */
const ERASABLE: Array<{ table: string; column: string; blank: string; keep: string[] }> = [
  { table: 'case_notes', column: 'body', blank: "''", keep: ['id', 'user_id', 'at', 'author_id', 'author'] },
  { table: 'case_events', column: 'detail', blank: 'NULL', keep: ['id', 'user_id', 'at', 'actor_id', 'actor', 'kind'] },
];

async function allowErasure(db: Kysely<any>, e: (typeof ERASABLE)[number]): Promise<void> {
  const same = (o: string, n: string) => e.keep.map((c) => `${n}.${c} IS NOT DISTINCT FROM ${o}.${c}`).join(' AND ');
  const blanked = (n: string) => (e.blank === 'NULL' ? `${n}.${e.column} IS NULL` : `${n}.${e.column} = ${e.blank}`);
  if (isPostgres(db)) {
    await sql.raw(`DROP TRIGGER ${e.table}_append_only ON ${e.table}`).execute(db);
    await sql
      .raw(
        `CREATE OR REPLACE FUNCTION ${e.table}_refuse_change() RETURNS trigger AS $$
      BEGIN
        IF TG_OP = 'UPDATE' AND ${blanked('NEW')} AND ${same('OLD', 'NEW')} THEN RETURN NEW; END IF;
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
      END; $$ LANGUAGE plpgsql`,
      )
      .execute(db);
    await sql
      .raw(
        `CREATE TRIGGER ${e.table}_append_only BEFORE UPDATE OR DELETE ON ${e.table} FOR EACH ROW EXECUTE FUNCTION ${e.table}_refuse_change()`,
      )
      .execute(db);
  } else {
    await sql.raw(`DROP TRIGGER ${e.table}_no_update`).execute(db);
    await sql
      .raw(
        `CREATE TRIGGER ${e.table}_no_update BEFORE UPDATE ON ${e.table} WHEN NOT (${blanked('new')} AND ${same('old', 'new')})
      BEGIN SELECT RAISE(ABORT, '${e.table} is append-only'); END`,
      )
      .execute(db);
  }
}

async function refuseAll(db: Kysely<any>, e: (typeof ERASABLE)[number]): Promise<void> {
  if (isPostgres(db)) {
    await sql.raw(`DROP TRIGGER ${e.table}_append_only ON ${e.table}`).execute(db);
    await sql.raw(`DROP FUNCTION ${e.table}_refuse_change()`).execute(db);
    await sql
      .raw(`CREATE TRIGGER ${e.table}_append_only BEFORE UPDATE OR DELETE ON ${e.table} FOR EACH ROW EXECUTE FUNCTION kyc_refuse_change()`)
      .execute(db);
  } else {
    await sql.raw(`DROP TRIGGER ${e.table}_no_update`).execute(db);
    await sql
      .raw(`CREATE TRIGGER ${e.table}_no_update BEFORE UPDATE ON ${e.table} BEGIN SELECT RAISE(ABORT, '${e.table} is append-only'); END`)
      .execute(db);
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('users')
    .addColumn('legal_hold', 'integer', (c) =>
      c
        .notNull()
        .defaultTo(0)
        .check(sql`legal_hold in (0, 1)`),
    )
    .execute();
  await db.schema.alterTable('users').addColumn('legal_hold_reason', 'text').execute();
  await db.schema.alterTable('users').addColumn('erased_at', 'text').execute();
  await db.schema
    .createTable('erasures')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('request', 'retention')`))
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('requested_by', 'text')
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('report', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('erasures_user').on('erasures').columns(['user_id']).execute();
  for (const e of ERASABLE) await allowErasure(db, e);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const e of ERASABLE) await refuseAll(db, e);
  await db.schema.dropTable('erasures').execute();
  await db.schema.alterTable('users').dropColumn('erased_at').execute();
  await db.schema.alterTable('users').dropColumn('legal_hold_reason').execute();
  await db.schema.alterTable('users').dropColumn('legal_hold').execute();
}
