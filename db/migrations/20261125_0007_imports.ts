import type { Kysely } from 'kysely';

/**
 * Bulk CSV onboarding. An import is staged (dry run) with every row stored and
 * validated, then committed; rows are the system of record for the work — the relay queues
 * stored-but-unqueued rows, so Redis can be rebuilt from here.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('imports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('file_sha256', 'text', (c) => c.notNull())
    .addColumn('file_bytes', 'integer', (c) => c.notNull())
    .addColumn('delimiter', 'text', (c) => c.notNull())
    // staged → (discarded | running) ; running ⇄ paused ; running|paused → cancelled | completed
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('pause_kind', 'text')
    .addColumn('status_reason', 'text')
    .addColumn('total_rows', 'integer', (c) => c.notNull())
    .addColumn('valid_rows', 'integer', (c) => c.notNull())
    .addColumn('invalid_rows', 'integer', (c) => c.notNull())
    .addColumn('unknown_columns', 'text', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('capa_error_streak', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('committed_by', 'text')
    .addColumn('committed_at', 'text')
    .addColumn('status_changed_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('imports_status').on('imports').columns(['status', 'created_at']).execute();
  await db.schema.createIndex('imports_created').on('imports').columns(['created_at', 'id']).execute();
  await db.schema.createIndex('imports_sha').on('imports').columns(['file_sha256', 'created_at']).execute();

  await db.schema
    .createTable('import_rows')
    .addColumn('import_id', 'text', (c) => c.notNull().references('imports.id').onDelete('cascade'))
    .addColumn('row_no', 'integer', (c) => c.notNull())
    .addColumn('line', 'integer', (c) => c.notNull())
    .addColumn('external_user_id', 'text')
    .addColumn('generated_id', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('email', 'text')
    .addColumn('type', 'text')
    .addColumn('alias', 'text')
    .addColumn('country', 'text')
    .addColumn('send_link', 'integer', (c) => c.notNull().defaultTo(0))
    // invalid | pending | queued | linking | done | failed | cancelled
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason_code', 'text')
    .addColumn('reason', 'text')
    .addColumn('user_id', 'text')
    .addColumn('capa_user_id', 'text')
    .addColumn('link_id', 'text')
    .addColumn('gen', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('enqueued_at', 'text')
    .addColumn('finished_at', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('import_rows_pk', ['import_id', 'row_no'])
    .execute();
  await db.schema.createIndex('import_rows_status').on('import_rows').columns(['import_id', 'status', 'row_no']).execute();
  await db.schema.createIndex('import_rows_finished').on('import_rows').columns(['import_id', 'finished_at']).execute();
  await db.schema.createIndex('import_rows_user').on('import_rows').column('user_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('import_rows').ifExists().execute();
  await db.schema.dropTable('imports').ifExists().execute();
}
