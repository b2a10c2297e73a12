import type { Kysely } from 'kysely';

/**
 * Operations views: a small key/value settings table (what we last registered at Capa —
 * Capa offers no GET for its webhook settings) and indexes behind the webhook inbox's filters.
 * Each filter index ends in `id`, the inbox's default sort and paging tie-breaker, so a filtered
 * page is read in index order.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text')
    .execute();
  await db.schema.createIndex('webhook_inbox_verdict_id').on('webhook_inbox').columns(['signature_verdict', 'id']).execute();
  await db.schema.createIndex('webhook_inbox_event_id').on('webhook_inbox').columns(['event_name', 'id']).execute();
  await db.schema.createIndex('webhook_inbox_status_id').on('webhook_inbox').columns(['status', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const name of ['webhook_inbox_verdict_id', 'webhook_inbox_event_id', 'webhook_inbox_status_id']) {
    await db.schema.dropIndex(name).ifExists().execute();
  }
  await db.schema.dropTable('settings').ifExists().execute();
}
