import type { Kysely } from 'kysely';

/**
 * Indexes for the operator console's users list and home page (bench/users-list.ts measures
 * them at 100k users). Each sortable column leads an index that ends in the paging tie-breakers
 * (created_at, id) so a page is read in index order without a sort of the whole table.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('users_state_created_id').on('users').columns(['kyc_state', 'created_at', 'id']).execute();
  await db.schema.createIndex('users_state_changed').on('users').columns(['kyc_state', 'kyc_state_changed_at', 'id']).execute();
  await db.schema.createIndex('users_changed').on('users').columns(['kyc_state_changed_at', 'created_at', 'id']).execute();
  await db.schema.createIndex('users_type_created').on('users').columns(['type', 'created_at', 'id']).execute();
  await db.schema.createIndex('users_country_created_id').on('users').columns(['country', 'created_at', 'id']).execute();
  await db.schema.createIndex('users_assignee_created').on('users').columns(['assignee_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('users_ext_created').on('users').columns(['external_user_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('users_email_created').on('users').columns(['email', 'created_at', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const name of [
    'users_state_created_id',
    'users_state_changed',
    'users_changed',
    'users_type_created',
    'users_country_created_id',
    'users_assignee_created',
    'users_ext_created',
    'users_email_created',
  ]) {
    await db.schema.dropIndex(name).ifExists().execute();
  }
}
