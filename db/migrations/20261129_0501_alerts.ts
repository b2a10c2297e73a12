import { sql, type Kysely } from 'kysely';
import { isPostgres, makeAppendOnly, withSerialId } from '../migration-helpers.js';

/**
 * Alerts: one row per alert (a rule's condition from the moment it was first seen true until it
 * resolved), their append-only history, silences, and what each rule remembers between two
 * evaluations. `open_key` is the rule id while the alert is not resolved and null after: its
 * unique index keeps one open alert per rule however many processes evaluate at once.
 *
 * The notification ledger also carries alert messages, whose recipient is an operator's address
 * or a webhook rather than a customer: `user_id` becomes nullable and `alert_id` names the alert.
 * SQLite cannot drop a NOT NULL constraint, so the table is rebuilt from its own stored
 * definition (whatever columns earlier migrations gave it), with its indexes, in one transaction.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('open_key', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('pending_since', 'text', (c) => c.notNull())
    .addColumn('fired_at', 'text')
    .addColumn('acknowledged_at', 'text')
    .addColumn('acknowledged_by', 'text')
    .addColumn('acknowledged_by_name', 'text')
    .addColumn('ack_reason', 'text')
    .addColumn('resolving_since', 'text')
    .addColumn('resolved_at', 'text')
    .addColumn('resolved_reason', 'text')
    .addColumn('value', 'double precision', (c) => c.notNull())
    .addColumn('peak_value', 'double precision', (c) => c.notNull())
    .addColumn('measure', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('page', 'text', (c) => c.notNull())
    .addColumn('silence_id', 'text')
    .addColumn('notified_at', 'text')
    .addColumn('resolution_notified_at', 'text')
    .addColumn('evaluated_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('alerts_open').on('alerts').column('open_key').unique().execute();
  await db.schema.createIndex('alerts_rule').on('alerts').columns(['rule_id', 'pending_since']).execute();
  await db.schema.createIndex('alerts_state').on('alerts').columns(['state', 'fired_at']).execute();
  await db.schema.createIndex('alerts_resolved').on('alerts').columns(['resolved_at']).execute();

  await withSerialId(db, db.schema.createTable('alert_events'))
    .addColumn('alert_id', 'text', (c) => c.notNull())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('operator_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .execute();
  await db.schema.createIndex('alert_events_alert').on('alert_events').columns(['alert_id', 'id']).execute();
  await makeAppendOnly(db, 'alert_events');

  await db.schema
    .createTable('alert_silences')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('starts_at', 'text', (c) => c.notNull())
    .addColumn('ends_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_by_name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .addColumn('ended_by_name', 'text')
    .execute();
  await db.schema.createIndex('alert_silences_rule').on('alert_silences').columns(['rule_id', 'ends_at']).execute();

  await db.schema
    .createTable('alert_rule_state')
    .addColumn('rule_id', 'text', (c) => c.primaryKey())
    .addColumn('evaluated_at', 'text', (c) => c.notNull())
    .addColumn('measure', 'text')
    .addColumn('error', 'text')
    .addColumn('memory', 'text')
    .execute();

  if (isPostgres(db)) {
    await sql`alter table notifications alter column user_id drop not null`.execute(db);
    await db.schema.alterTable('notifications').addColumn('alert_id', 'text').execute();
  } else {
    await db.transaction().execute(async (trx) => {
      await rebuildSqliteTableWithNullable(trx, 'notifications', 'user_id');
      await trx.schema.alterTable('notifications').addColumn('alert_id', 'text').execute();
    });
  }
  await db.schema.createIndex('notifications_alert').on('notifications').columns(['alert_id']).execute();
}

/**
 * SQLite: rebuilds `table` with `column`'s NOT NULL removed, keeping every other column,
 * constraint and index as stored (sqlite_master), and every row. Nothing references the table
 * (checked), so dropping the old one breaks no foreign key.
 */
async function rebuildSqliteTableWithNullable(db: Kysely<any>, table: string, column: string): Promise<void> {
  const rows = await sql<{ type: string; name: string; sql: string | null }>`
    select type, name, sql from sqlite_master where tbl_name = ${table} and type in ('table', 'index', 'trigger')`.execute(db);
  const create = rows.rows.find((r) => r.type === 'table')?.sql;
  if (!create) throw new Error(`no table ${table}`);
  const referencing = await sql<{ name: string }>`
    select m.name from sqlite_master m, pragma_foreign_key_list(m.name) f where m.type = 'table' and f."table" = ${table}`.execute(db);
  if (referencing.rows.length) throw new Error(`${table} is referenced by ${referencing.rows.map((r) => r.name).join(', ')}`);
  const def = new RegExp(`("?${column}"?\\s+text)\\s+not null`, 'i');
  if (!def.test(create)) throw new Error(`${table}.${column} is not a NOT NULL text column in: ${create}`);
  const temp = `${table}_rebuild`;
  const createTemp = create.replace(def, '$1').replace(/^create table\s+("?)[A-Za-z_]+\1/i, `create table "${temp}"`);
  const cols = (await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db)).rows
    .map((r) => `"${r.name}"`)
    .join(', ');
  await sql.raw(createTemp).execute(db);
  await sql.raw(`insert into "${temp}" (${cols}) select ${cols} from "${table}"`).execute(db);
  await sql.raw(`drop table "${table}"`).execute(db);
  await sql.raw(`alter table "${temp}" rename to "${table}"`).execute(db);
  // Indexes and triggers went with the old table: create them again as they were.
  for (const r of rows.rows) if (r.type !== 'table' && r.sql) await sql.raw(r.sql).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('notifications_alert').ifExists().execute();
  await db.schema.alterTable('notifications').dropColumn('alert_id').execute();
  for (const t of ['alert_rule_state', 'alert_silences', 'alert_events', 'alerts']) await db.schema.dropTable(t).ifExists().execute();
}
