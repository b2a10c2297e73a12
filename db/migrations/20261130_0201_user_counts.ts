import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../migration-helpers.js';

/**
 * Customers counted per state, kept by the database itself, for the users list's chips and the
 * home page: at 1,000,000 customers, counting them (grouped by state, under the list's country,
 * type and unassigned filters) took 55–80 ms on SQLite, past the list's 60 ms budget on its own.
 *
 *  - `user_counts`: one row per (state, type, country, assigned) with its number of customers
 *    (country '' for none): at most 72 rows.
 *  - `user_count_deltas`: what changed since, appended by triggers on `users` (+1 for the row as it
 *    is now, -1 for the row as it was, only when one of those four columns changed). Writers only
 *    ever insert here, so concurrent transactions never wait on a shared counter row (on
 *    PostgreSQL a hot counter row would serialise every worker's batch and could deadlock).
 *  - A count is the sum of both; the worker folds the deltas into `user_counts` every few
 *    seconds (db/repositories/user-counts.ts foldUserCounts), in one transaction.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // PostgreSQL runs migrations in a transaction; SQLite's are not, so this one takes the write
  // lock itself: no customer can be written between the triggers and the first count.
  if (isPostgres(db)) await create(db, true);
  else await db.transaction().execute((trx) => create(trx, false));
}

async function create(db: Kysely<any>, pg: boolean): Promise<void> {
  await db.schema
    .createTable('user_counts')
    .addColumn('kyc_state', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('country', 'text', (c) => c.notNull())
    .addColumn('assigned', 'integer', (c) => c.notNull())
    .addColumn('n', pg ? 'bigint' : 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('user_counts_pk', ['kyc_state', 'type', 'country', 'assigned'])
    .execute();
  await db.schema
    .createTable('user_count_deltas')
    .addColumn('id', pg ? 'bigserial' : 'integer', (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('kyc_state', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('country', 'text', (c) => c.notNull())
    .addColumn('assigned', 'integer', (c) => c.notNull())
    .addColumn('d', 'integer', (c) => c.notNull())
    .execute();

  if (pg) {
    // The function's table names resolve in the schema it was created in, whatever the caller's path.
    await sql`CREATE FUNCTION user_counts_track() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
      BEGIN
        IF TG_OP <> 'INSERT' THEN
          INSERT INTO user_count_deltas (kyc_state, type, country, assigned, d)
          VALUES (OLD.kyc_state, OLD.type, coalesce(OLD.country, ''), (OLD.assignee_id IS NOT NULL)::int, -1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
          INSERT INTO user_count_deltas (kyc_state, type, country, assigned, d)
          VALUES (NEW.kyc_state, NEW.type, coalesce(NEW.country, ''), (NEW.assignee_id IS NOT NULL)::int, 1);
        END IF;
        RETURN NULL;
      END $$`.execute(db);
    await sql`CREATE TRIGGER user_counts_aid AFTER INSERT OR DELETE ON users FOR EACH ROW EXECUTE FUNCTION user_counts_track()`.execute(db);
    await sql`CREATE TRIGGER user_counts_au AFTER UPDATE OF kyc_state, type, country, assignee_id ON users FOR EACH ROW
      WHEN (OLD.kyc_state IS DISTINCT FROM NEW.kyc_state OR OLD.type IS DISTINCT FROM NEW.type
        OR OLD.country IS DISTINCT FROM NEW.country OR (OLD.assignee_id IS NULL) <> (NEW.assignee_id IS NULL))
      EXECUTE FUNCTION user_counts_track()`.execute(db);
  } else {
    const row = (r: 'new' | 'old', d: number) =>
      sql.raw(
        `INSERT INTO user_count_deltas (kyc_state, type, country, assigned, d) VALUES (${r}.kyc_state, ${r}.type, coalesce(${r}.country, ''), ${r}.assignee_id IS NOT NULL, ${d});`,
      );
    await sql`CREATE TRIGGER user_counts_ai AFTER INSERT ON users BEGIN ${row('new', 1)} END`.execute(db);
    await sql`CREATE TRIGGER user_counts_ad AFTER DELETE ON users BEGIN ${row('old', -1)} END`.execute(db);
    await sql`CREATE TRIGGER user_counts_au AFTER UPDATE OF kyc_state, type, country, assignee_id ON users
      WHEN old.kyc_state IS NOT new.kyc_state OR old.type IS NOT new.type OR old.country IS NOT new.country
        OR (old.assignee_id IS NULL) <> (new.assignee_id IS NULL)
      BEGIN ${row('old', -1)} ${row('new', 1)} END`.execute(db);
  }
  // The customers already there.
  await sql`INSERT INTO user_counts (kyc_state, type, country, assigned, n)
    SELECT kyc_state, type, coalesce(country, ''), CASE WHEN assignee_id IS NULL THEN 0 ELSE 1 END, count(*)
    FROM users GROUP BY 1, 2, 3, 4`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) {
    await sql`DROP TRIGGER IF EXISTS user_counts_aid ON users`.execute(db);
    await sql`DROP TRIGGER IF EXISTS user_counts_au ON users`.execute(db);
    await sql`DROP FUNCTION IF EXISTS user_counts_track()`.execute(db);
  } else {
    for (const t of ['user_counts_ai', 'user_counts_ad', 'user_counts_au']) await sql`DROP TRIGGER IF EXISTS ${sql.raw(t)}`.execute(db);
  }
  await db.schema.dropTable('user_count_deltas').ifExists().execute();
  await db.schema.dropTable('user_counts').ifExists().execute();
}
