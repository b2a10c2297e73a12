import type { Kysely } from 'kysely';
import { withSerialId } from '../migration-helpers.js';

/**
 * Stale-status refresh and reconciliation: refresh runs (scheduled cycles and operator
 * requests, tracked with progress), the customers each run asked Capa about, and the drift log
 * (every time Capa's polled truth differed from what we showed).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await withSerialId(db, db.schema.createTable('refresh_runs'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('requested_by', 'text')
    // The operator form's request id: a double submit creates one run.
    .addColumn('request_id', 'text', (c) => c.unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text')
    .addColumn('enqueued_at', 'text')
    .addColumn('finished_at', 'text')
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('enqueued', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('skipped', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('answered', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('drift', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rate_per_sec', 'real', (c) => c.notNull())
    .addColumn('eta_seconds', 'integer')
    .addColumn('error', 'text')
    .execute();
  await db.schema.createIndex('refresh_runs_status').on('refresh_runs').columns(['status', 'id']).execute();

  await db.schema
    .createTable('refresh_run_users')
    .addColumn('run_id', 'integer', (c) => c.notNull().references('refresh_runs.id'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addPrimaryKeyConstraint('refresh_run_users_pk', ['run_id', 'user_id'])
    .execute();

  await withSerialId(db, db.schema.createTable('drift_events'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    // One drift entry per drifting state change (the hook and the backfill may both try).
    .addColumn('state_change_id', 'integer', (c) => c.unique())
    .addColumn('detected_at', 'text', (c) => c.notNull())
    .addColumn('was_state', 'text', (c) => c.notNull())
    .addColumn('now_state', 'text', (c) => c.notNull())
    .addColumn('applied', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('job_name', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text')
    .addColumn('triggered_by', 'text')
    .addColumn('run_id', 'integer')
    .addColumn('missed_events', 'text')
    .addColumn('evidence', 'text')
    .execute();
  await db.schema.createIndex('drift_events_detected').on('drift_events').columns(['detected_at', 'id']).execute();
  await db.schema.createIndex('drift_events_user').on('drift_events').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('drift_events_run').on('drift_events').columns(['run_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['drift_events', 'refresh_run_users', 'refresh_runs']) await db.schema.dropTable(t).ifExists().execute();
}
