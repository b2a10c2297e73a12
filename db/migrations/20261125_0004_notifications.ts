import type { Kysely } from 'kysely';

/**
 * Notifications: the ledger of every message sent to a customer, and the retry
 * programme that follows a rejected customer up. Snake_case: migrations run without the
 * CamelCasePlugin. Portable across SQLite and PostgreSQL (text timestamps, integer counters).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('retry_programmes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('rejected_at', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('stop_reason', 'text')
    .addColumn('stopped_by', 'text')
    .addColumn('stopped_at', 'text')
    .addColumn('cadence_days', 'text', (c) => c.notNull())
    .addColumn('next_step', 'integer', (c) => c.notNull())
    .addColumn('next_due_at', 'text')
    .addColumn('reinvited_at', 'text')
    .addColumn('resubmitted_at', 'text')
    .addColumn('verified_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  // One programme per rejection: the hook and the sweep may both try to start it.
  await db.schema.createIndex('retry_programmes_rejection').on('retry_programmes').columns(['user_id', 'rejected_at']).unique().execute();
  await db.schema.createIndex('retry_programmes_due').on('retry_programmes').columns(['status', 'next_due_at']).execute();
  await db.schema.createIndex('retry_programmes_created').on('retry_programmes').columns(['created_at']).execute();

  await db.schema
    .createTable('notifications')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
    .addColumn('programme_id', 'text', (c) => c.references('retry_programmes.id'))
    .addColumn('step', 'integer')
    .addColumn('link_id', 'text')
    .addColumn('link_url', 'text')
    .addColumn('link_request_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('failure_reason', 'text')
    .addColumn('last_error', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('subject', 'text')
    .addColumn('provider_message_id', 'text')
    .addColumn('cause', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('enqueued_at', 'text')
    .addColumn('last_attempt_at', 'text')
    .addColumn('sent_at', 'text')
    .addColumn('failed_at', 'text')
    .addColumn('cancelled_at', 'text')
    .execute();
  await db.schema.createIndex('notifications_user').on('notifications').columns(['user_id', 'created_at']).execute();
  await db.schema.createIndex('notifications_created').on('notifications').columns(['created_at', 'id']).execute();
  await db.schema.createIndex('notifications_status_created').on('notifications').columns(['status', 'created_at', 'id']).execute();
  await db.schema.createIndex('notifications_kind_created').on('notifications').columns(['kind', 'created_at', 'id']).execute();
  await db.schema.createIndex('notifications_programme').on('notifications').columns(['programme_id']).execute();
  await db.schema.createIndex('notifications_link_request').on('notifications').columns(['link_request_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('notifications').ifExists().execute();
  await db.schema.dropTable('retry_programmes').ifExists().execute();
}
