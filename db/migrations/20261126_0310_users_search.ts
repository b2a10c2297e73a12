import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../migration-helpers.js';

/**
 * Users list, second pass after bench/users-list.ts at 100k users:
 *  - covering indexes for the per-state counts under the assignee and country/type filters
 *    (the count groups by kyc_state; without kyc_state in the index every match is a row lookup);
 *  - SQLite: a trigram FTS5 index over e-mail, externalUserId, Capa userId and alias so substring
 *    search does not scan the table. Kept in step by triggers (only on those four columns, so
 *    state updates by workers do not touch it). PostgreSQL keeps ILIKE (see users-list.ts).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('users_assignee_state').on('users').columns(['assignee_id', 'kyc_state']).execute();
  await db.schema.createIndex('users_country_type_state').on('users').columns(['country', 'type', 'kyc_state']).execute();
  if (isPostgres(db)) return;
  await sql`CREATE VIRTUAL TABLE users_search USING fts5(email, external_user_id, capa_user_id, alias, content='users', content_rowid='rowid', tokenize='trigram')`.execute(
    db,
  );
  await sql`CREATE TRIGGER users_search_ai AFTER INSERT ON users BEGIN
    INSERT INTO users_search(rowid, email, external_user_id, capa_user_id, alias) VALUES (new.rowid, new.email, new.external_user_id, new.capa_user_id, new.alias);
  END`.execute(db);
  await sql`CREATE TRIGGER users_search_ad AFTER DELETE ON users BEGIN
    INSERT INTO users_search(users_search, rowid, email, external_user_id, capa_user_id, alias) VALUES ('delete', old.rowid, old.email, old.external_user_id, old.capa_user_id, old.alias);
  END`.execute(db);
  await sql`CREATE TRIGGER users_search_au AFTER UPDATE OF email, external_user_id, capa_user_id, alias ON users BEGIN
    INSERT INTO users_search(users_search, rowid, email, external_user_id, capa_user_id, alias) VALUES ('delete', old.rowid, old.email, old.external_user_id, old.capa_user_id, old.alias);
    INSERT INTO users_search(rowid, email, external_user_id, capa_user_id, alias) VALUES (new.rowid, new.email, new.external_user_id, new.capa_user_id, new.alias);
  END`.execute(db);
  await sql`INSERT INTO users_search(users_search) VALUES ('rebuild')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (!isPostgres(db)) {
    for (const t of ['users_search_ai', 'users_search_ad', 'users_search_au']) await sql`DROP TRIGGER IF EXISTS ${sql.raw(t)}`.execute(db);
    await sql`DROP TABLE IF EXISTS users_search`.execute(db);
  }
  await db.schema.dropIndex('users_country_type_state').ifExists().execute();
  await db.schema.dropIndex('users_assignee_state').ifExists().execute();
}
