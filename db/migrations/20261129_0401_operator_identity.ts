import type { Kysely } from 'kysely';
import { withSerialId } from '../migration-helpers.js';

/**
 * Operator identity: the provider subject an operator signed in with, second factors (a TOTP
 * secret, one-time recovery codes, WebAuthn passkeys), and what a session knows about how it was
 * opened. A session starts at a `stage`: `full` (signed in), `mfa` (password accepted, second
 * factor pending) or `enrol` (password accepted, a second factor must be set up first).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('operators').addColumn('oidc_issuer', 'text').execute();
  await db.schema.alterTable('operators').addColumn('oidc_subject', 'text').execute();
  await db.schema.createIndex('operators_oidc_subject').on('operators').columns(['oidc_issuer', 'oidc_subject']).unique().execute();

  await db.schema
    .alterTable('sessions')
    .addColumn('stage', 'text', (c) => c.notNull().defaultTo('full'))
    .execute();
  await db.schema.alterTable('sessions').addColumn('method', 'text').execute();
  // The provider's refresh and ID tokens (encrypted like KYC details), to re-check the person at
  // the provider while the session lives and to end the provider's session on sign-out.
  await db.schema.alterTable('sessions').addColumn('oidc_tokens', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('oidc_checked_at', 'text').execute();
  // The WebAuthn challenge this session was last given (registration or sign-in), single use.
  await db.schema.alterTable('sessions').addColumn('challenge', 'text').execute();

  await db.schema
    .createTable('operator_totp')
    .addColumn('operator_id', 'text', (c) => c.primaryKey().references('operators.id'))
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('confirmed_at', 'text')
    .addColumn('last_time_step', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await withSerialId(db, db.schema.createTable('operator_recovery_codes'))
    .addColumn('operator_id', 'text', (c) => c.notNull().references('operators.id'))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();
  await db.schema
    .createIndex('operator_recovery_codes_operator')
    .on('operator_recovery_codes')
    .columns(['operator_id', 'code_hash'])
    .execute();

  await db.schema
    .createTable('operator_passkeys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('operator_id', 'text', (c) => c.notNull().references('operators.id'))
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', 'integer', (c) => c.notNull())
    .addColumn('transports', 'text')
    .addColumn('device_type', 'text')
    .addColumn('backed_up', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .execute();
  await db.schema.createIndex('operator_passkeys_operator').on('operator_passkeys').column('operator_id').execute();

  // The per-address sign-in throttle counts recent refusals from one client address.
  await db.schema.createIndex('audit_log_ip_at').on('audit_log').columns(['ip', 'at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('audit_log_ip_at').ifExists().execute();
  for (const t of ['operator_passkeys', 'operator_recovery_codes', 'operator_totp']) await db.schema.dropTable(t).ifExists().execute();
  for (const c of ['challenge', 'oidc_checked_at', 'oidc_tokens', 'method', 'stage']) {
    await db.schema.alterTable('sessions').dropColumn(c).execute();
  }
  await db.schema.dropIndex('operators_oidc_subject').ifExists().execute();
  for (const c of ['oidc_subject', 'oidc_issuer']) await db.schema.alterTable('operators').dropColumn(c).execute();
}
