import type { Kysely } from 'kysely';

/**
 * The retention job's runs: when each ran, the policy it applied (years per KYC state), how many
 * customers it erased and how many a legal hold kept, per state. Each retention erasure names its
 * run, so a run lists the customers it erased.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('retention_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text')
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .addColumn('policy', 'text', (c) => c.notNull())
    .addColumn('erased', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('held', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('retention_runs_started').on('retention_runs').columns(['started_at']).execute();
  await db.schema.alterTable('erasures').addColumn('run_id', 'text').execute();
  await db.schema.createIndex('erasures_run').on('erasures').columns(['run_id', 'at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('erasures_run').execute();
  await db.schema.alterTable('erasures').dropColumn('run_id').execute();
  await db.schema.dropTable('retention_runs').execute();
}
