import type { Kysely } from 'kysely';
import { makeAppendOnly, withSerialId } from '../migration-helpers.js';

/**
 * Manual-review follow-up: one case row per customer, append-only notes and case
 * history, follow-up tasks. The assignee stays on users.assignee_id (claim-next is one
 * conditional UPDATE on that column).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('review_cases')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('resolution_reason', 'text')
    .addColumn('resolution_comment', 'text')
    .addColumn('opened_at', 'text', (c) => c.notNull())
    .addColumn('status_changed_at', 'text', (c) => c.notNull())
    .addColumn('resolved_at', 'text')
    .addColumn('resolved_by', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('review_cases_status').on('review_cases').columns(['status', 'opened_at']).execute();

  await withSerialId(db, db.schema.createTable('case_notes'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('author_id', 'text')
    .addColumn('author', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('case_notes_user').on('case_notes').columns(['user_id', 'id']).execute();
  await makeAppendOnly(db, 'case_notes');

  await withSerialId(db, db.schema.createTable('case_tasks'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('due_on', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('done_at', 'text')
    .addColumn('done_by', 'text')
    .execute();
  await db.schema.createIndex('case_tasks_user').on('case_tasks').columns(['user_id', 'done_at', 'due_on']).execute();

  await withSerialId(db, db.schema.createTable('case_events'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .execute();
  await db.schema.createIndex('case_events_user').on('case_events').columns(['user_id', 'id']).execute();
  await makeAppendOnly(db, 'case_events');

  // The audit page filters by date range and pages by id.
  await db.schema.createIndex('audit_log_at').on('audit_log').columns(['at', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('audit_log_at').ifExists().execute();
  for (const t of ['case_events', 'case_tasks', 'case_notes', 'review_cases']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
