import { sql, type Kysely } from 'kysely';

/**
 * Each operator's own language (es | en) and time zone for the console; null until they choose,
 * which means: the browser's language, then the instance's DEFAULT_LOCALE / DEFAULT_TIME_ZONE.
 * The database refuses any other value (the lists are frozen here as they were when written).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('operators')
    .addColumn('locale', 'text', (c) => c.check(sql`locale is null or locale in ('es', 'en')`))
    .execute();
  await db.schema
    .alterTable('operators')
    .addColumn('time_zone', 'text', (c) =>
      c.check(sql`time_zone is null or time_zone in ('America/Mexico_City', 'America/Santo_Domingo', 'UTC')`),
    )
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('operators').dropColumn('time_zone').execute();
  await db.schema.alterTable('operators').dropColumn('locale').execute();
}
