import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../migration-helpers.js';

/**
 * The audit log's UPDATE/DELETE triggers do not see SQLite's REPLACE: `INSERT OR REPLACE` (and
 * `REPLACE INTO`) deletes the conflicting row without firing delete triggers unless the
 * connection turned recursive_triggers on, so one statement could rewrite any row. A pragma is per
 * connection and would not protect the file from other clients; a trigger is stored with the
 * table. It refuses any insert that would collide with an existing row on id, prev_hash or hash —
 * a plain append never does, so only REPLACE, OR IGNORE and upserts are affected.
 *
 * The message says "duplicate" on purpose: the appender (db/repositories/audit.ts) retries on the
 * new head when a concurrent writer extended the chain first, as it did for the unique violation
 * this trigger now pre-empts.
 *
 * PostgreSQL has no REPLACE, and `INSERT … ON CONFLICT DO UPDATE` runs the table's BEFORE UPDATE
 * row triggers on the existing row, so the append-only trigger already refuses it (tested); there
 * is nothing to add there.
 */
export async function up(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) return;
  await sql`CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
    WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
      OR EXISTS (SELECT 1 FROM audit_log WHERE prev_hash = NEW.prev_hash)
      OR EXISTS (SELECT 1 FROM audit_log WHERE hash = NEW.hash)
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: duplicate id, prev_hash or hash (an existing row cannot be replaced)'); END`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) return;
  await sql`DROP TRIGGER IF EXISTS audit_log_no_replace`.execute(db);
}
