import type { Kysely } from 'kysely';
import { makeAppendOnly, withSerialId } from '../migration-helpers.js';

/**
 * Anchors of the audit chain: its head hash and row count at a moment. The copy that matters is
 * the one written to the log stream (outside the database); these rows give /audit its history.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withSerialId(db, db.schema.createTable('audit_anchors'))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('row_count', 'integer', (c) => c.notNull())
    .addColumn('head_id', 'integer')
    .addColumn('head_hash', 'text', (c) => c.notNull())
    .execute();
  await makeAppendOnly(db, 'audit_anchors');
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_anchors').ifExists().execute();
}
