import type { Kysely } from 'kysely';

/**
 * Three indexes from the first migration are exact prefixes of the console's indexes
 * (20261126_0300), so every query they served is served by the longer one. They only cost
 * writes: each KYC state change updated users_state_created besides the six other state indexes.
 */
const PREFIXES: Array<[name: string, columns: string[]]> = [
  ['users_state_created', ['kyc_state', 'created_at']], // ⊂ users_state_created_id
  ['users_country', ['country', 'created_at']], // ⊂ users_country_created_id
  ['users_assignee', ['assignee_id']], // ⊂ users_assignee_created
];

export async function up(db: Kysely<any>): Promise<void> {
  for (const [name] of PREFIXES) await db.schema.dropIndex(name).ifExists().execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const [name, columns] of PREFIXES) await db.schema.createIndex(name).ifNotExists().on('users').columns(columns).execute();
}
