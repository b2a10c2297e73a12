import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Migrator, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb, migrateToLatest } from '../../db/client.js';
import { migrations } from '../../db/migrations/index.js';

/**
 * The alerts migration rebuilds SQLite's notifications table (SQLite cannot drop NOT NULL): on a
 * database that already has messages, every row, index and foreign key must survive it.
 */
describe('alerts migration on an SQLite database with messages', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-alerts-mig-'));
  const db = createDb(`file:${path.join(dir, 'm.sqlite')}`);
  afterAll(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps rows, indexes and foreign keys, and lets an alert message have no customer', async () => {
    const names = Object.keys(migrations).sort();
    const before = names[names.indexOf('20261129_0501_alerts') - 1]!;
    const raw = db.withoutPlugins();
    const migrator = new Migrator({ db: raw, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true });
    const { error } = await migrator.migrateTo(before);
    expect(error).toBeUndefined();
    const now = new Date().toISOString();
    await sql`insert into users (id, external_user_id, type, email, kyc_state, kyc_state_changed_at, capa_sync, created_at, updated_at)
      values ('u1', 'ext-1', 'INDIVIDUAL', 'a@example.mx', 'LINK_ISSUED', ${now}, 'created', ${now}, ${now})`.execute(raw);
    await sql`insert into notifications (id, user_id, kind, channel, locale, address, dedupe_key, status, attempts, created_at, updated_at)
      values ('n1', 'u1', 'kyc_link', 'email', 'es', 'a@example.mx', 'link:1', 'sent', 2, ${now}, ${now})`.execute(raw);
    const indexesBefore = (
      await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'notifications'`.execute(raw)
    ).rows.map((r) => r.name);

    await migrateToLatest(db);

    const row = await db.selectFrom('notifications').selectAll().where('id', '=', 'n1').executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      userId: 'u1',
      kind: 'kyc_link',
      address: 'a@example.mx',
      dedupeKey: 'link:1',
      status: 'sent',
      attempts: 2,
      alertId: null,
    });
    const indexesAfter = (
      await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'notifications'`.execute(raw)
    ).rows.map((r) => r.name);
    expect(indexesAfter.sort()).toEqual([...indexesBefore, 'notifications_alert'].sort());
    // The dedupe key is still unique, a customer must still exist, and an alert message needs none.
    await expect(
      sql`insert into notifications (id, user_id, kind, channel, locale, address, dedupe_key, status, attempts, created_at, updated_at)
        values ('n2', 'u1', 'kyc_link', 'email', 'es', 'a@example.mx', 'link:1', 'queued', 0, ${now}, ${now})`.execute(raw),
    ).rejects.toThrow(/UNIQUE/);
    await expect(
      sql`insert into notifications (id, user_id, kind, channel, locale, address, dedupe_key, status, attempts, created_at, updated_at)
        values ('n3', 'nobody', 'kyc_link', 'email', 'es', 'a@example.mx', 'link:3', 'queued', 0, ${now}, ${now})`.execute(raw),
    ).rejects.toThrow(/FOREIGN KEY/);
    await sql`insert into notifications (id, user_id, alert_id, kind, channel, locale, address, dedupe_key, status, attempts, created_at, updated_at)
      values ('n4', null, 'a1', 'alert_firing', 'webhook', 'en', 'https://hooks.example/…', 'alert:a1', 'queued', 0, ${now}, ${now})`.execute(
      raw,
    );
    expect((await db.selectFrom('notifications').select('id').execute()).map((r) => r.id).sort()).toEqual(['n1', 'n4']);
  });
});
