import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../migration-helpers.js';

/**
 * PostgreSQL counterpart of the SQLite trigram search (20261126_0310): bench/users-list.ts at 100k
 * customers measured substring search at p95 84–168 ms on PostgreSQL (ILIKE scans every row).
 * A pg_trgm GIN index over one expression joining the four searched columns lets ILIKE find
 * candidates through the index; db/repositories/users-list.ts uses the identical expression and
 * re-checks each column exactly.
 *
 * pg_trgm ships with PostgreSQL (contrib) and is a trusted extension, so the database owner may
 * create it. Where it cannot be created, the migration still succeeds and search keeps scanning.
 */
export async function up(db: Kysely<any>): Promise<void> {
  if (!isPostgres(db)) return;
  // A subtransaction: a refusal (no privilege, not installed, a concurrent CREATE) does not abort
  // the migration's transaction.
  await sql`DO $$ BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm not available (%); users search will scan', SQLERRM;
  END $$`.execute(db);
  const ext = await sql<{
    schema: string;
  }>`select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_trgm'`.execute(db);
  const schema = ext.rows[0]?.schema;
  if (!schema) return;
  await sql`CREATE INDEX users_search_trgm ON users USING gin ((coalesce(email, '') || ' ' || coalesce(external_user_id, '') || ' ' || coalesce(capa_user_id, '') || ' ' || coalesce(alias, '')) ${sql.id(schema)}.gin_trgm_ops)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  if (!isPostgres(db)) return;
  await sql`DROP INDEX IF EXISTS users_search_trgm`.execute(db);
}
