import type { Kysely } from 'kysely';
import { makeAppendOnly, withSerialId } from '../migration-helpers.js';

// Snake_case names: migrations run without the CamelCasePlugin.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('operators')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_failed_login_at', 'text')
    .addColumn('last_login_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('operator_id', 'text', (c) => c.notNull().references('operators.id'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('ip', 'text')
    .execute();
  await db.schema.createIndex('sessions_operator').on('sessions').column('operator_id').execute();

  await db.schema
    .createTable('setup_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('external_user_id', 'text', (c) => c.notNull().unique())
    .addColumn('capa_user_id', 'text', (c) => c.unique())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('alias', 'text')
    .addColumn('country', 'text')
    .addColumn('kyc_state', 'text', (c) => c.notNull())
    .addColumn('kyc_state_changed_at', 'text', (c) => c.notNull())
    .addColumn('kyc_state_reason', 'text')
    .addColumn('kyc_state_cause', 'text')
    .addColumn('capa_confirmed_at', 'text')
    .addColumn('capa_sync', 'text', (c) => c.notNull())
    .addColumn('capa_sync_error', 'text')
    .addColumn('unmapped_result', 'text')
    .addColumn('link_expired', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('assignee_id', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  // Capa requires unique e-mails per partner; we enforce it case-insensitively on our side.
  await db.schema.createIndex('users_email').on('users').column('email').unique().execute();
  await db.schema.createIndex('users_state_created').on('users').columns(['kyc_state', 'created_at']).execute();
  await db.schema.createIndex('users_created').on('users').columns(['created_at', 'id']).execute();
  await db.schema.createIndex('users_confirmed').on('users').columns(['kyc_state', 'capa_confirmed_at']).execute();
  await db.schema.createIndex('users_assignee').on('users').column('assignee_id').execute();
  await db.schema.createIndex('users_country').on('users').columns(['country', 'created_at']).execute();

  await db.schema
    .createTable('kyc_links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('country', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .execute();
  await db.schema.createIndex('kyc_links_user').on('kyc_links').columns(['user_id', 'created_at']).execute();
  await db.schema.createIndex('kyc_links_active').on('kyc_links').columns(['status', 'created_at']).execute();

  await db.schema
    .createTable('kyc_details')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('fetched_at', 'text', (c) => c.notNull())
    .addColumn('verification_result', 'text')
    .addColumn('mapped_state', 'text')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text')
    .addColumn('cause', 'text')
    .execute();
  await db.schema.createIndex('kyc_details_user').on('kyc_details').columns(['user_id', 'fetched_at']).execute();

  await withSerialId(db, db.schema.createTable('webhook_inbox'))
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('raw_body', 'text', (c) => c.notNull())
    .addColumn('headers', 'text', (c) => c.notNull())
    .addColumn('signature_verdict', 'text', (c) => c.notNull())
    .addColumn('secret_index', 'integer')
    .addColumn('event_type', 'text')
    .addColumn('event_name', 'text')
    .addColumn('external_user_id', 'text')
    .addColumn('dedupe_key', 'text')
    .addColumn('duplicate_of', 'integer')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('enqueued_at', 'text')
    .addColumn('processed_at', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('user_id', 'text')
    .addColumn('state_from', 'text')
    .addColumn('state_to', 'text')
    .addColumn('effect', 'text')
    .addColumn('error', 'text')
    .execute();
  await db.schema.createIndex('webhook_inbox_dedupe').on('webhook_inbox').columns(['dedupe_key', 'received_at']).execute();
  await db.schema.createIndex('webhook_inbox_relay').on('webhook_inbox').columns(['status', 'enqueued_at']).execute();
  await db.schema.createIndex('webhook_inbox_ext').on('webhook_inbox').columns(['external_user_id', 'id']).execute();
  await db.schema.createIndex('webhook_inbox_user').on('webhook_inbox').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('webhook_inbox_received').on('webhook_inbox').column('received_at').execute();

  await withSerialId(db, db.schema.createTable('state_changes'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('from_state', 'text', (c) => c.notNull())
    .addColumn('to_state', 'text', (c) => c.notNull())
    .addColumn('cause_type', 'text', (c) => c.notNull())
    .addColumn('cause_id', 'text')
    .addColumn('reason', 'text')
    .addColumn('drift', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('state_changes_user').on('state_changes').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('state_changes_drift').on('state_changes').columns(['drift', 'at']).execute();

  await withSerialId(db, db.schema.createTable('job_runs'))
    .addColumn('user_id', 'text')
    .addColumn('job_name', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('result', 'text')
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('job_runs_user').on('job_runs').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('job_runs_job').on('job_runs').columns(['job_id', 'attempt']).execute();

  await db.schema
    .createTable('idempotency')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('result', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await withSerialId(db, db.schema.createTable('audit_log'))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('operator_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target_type', 'text')
    .addColumn('target_id', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .addColumn('ip', 'text')
    .addColumn('prev_hash', 'text', (c) => c.notNull().unique()) // one successor per row: a forked chain cannot be written
    .addColumn('hash', 'text', (c) => c.notNull().unique())
    .execute();
  await db.schema.createIndex('audit_log_target').on('audit_log').columns(['target_type', 'target_id', 'id']).execute();
  await db.schema.createIndex('audit_log_operator').on('audit_log').columns(['operator_id', 'id']).execute();
  await db.schema.createIndex('audit_log_action').on('audit_log').columns(['action', 'id']).execute();
  await makeAppendOnly(db, 'audit_log');
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'audit_log',
    'idempotency',
    'job_runs',
    'state_changes',
    'webhook_inbox',
    'kyc_details',
    'kyc_links',
    'users',
    'setup_tokens',
    'sessions',
    'operators',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
