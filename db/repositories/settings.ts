import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

/**
 * Small operator-written settings, one JSON value per key. Used for what Capa cannot tell us back
 * (it has no GET for webhook settings), so the console shows what we last registered.
 */
export const SETTING_KEYS = { capaWebhook: 'capa.webhook' } as const;

export interface CapaWebhookSetting {
  /** The URL we registered; null = delivery switched off at Capa. */
  url: string | null;
  /** Capa's settings record id and its updatedAt (Capa's own "YYYY-MM-DD HH:mm:ss.SSS"). */
  capaId: string;
  capaUpdatedAt: string | null;
  setAt: string;
  setBy: string | null;
}

export interface StoredSetting<T> {
  value: T;
  updatedAt: string;
  updatedBy: string | null;
}

export async function getSetting<T>(db: Executor, key: string): Promise<StoredSetting<T> | null> {
  const row = await db.selectFrom('settings').selectAll().where('key', '=', key).executeTakeFirst();
  if (!row) return null;
  try {
    return { value: JSON.parse(row.value) as T, updatedAt: row.updatedAt, updatedBy: row.updatedBy };
  } catch {
    return null;
  }
}

export async function putSetting(db: Executor, key: string, value: unknown, updatedBy: string | null): Promise<void> {
  const row = { key, value: JSON.stringify(value), updatedAt: nowIso(), updatedBy };
  await db
    .insertInto('settings')
    .values(row)
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: row.value, updatedAt: row.updatedAt, updatedBy: row.updatedBy }))
    .execute();
}

/** Removes a setting (its owner falls back to the environment's value). */
export async function deleteSetting(db: Executor, key: string): Promise<void> {
  await db.deleteFrom('settings').where('key', '=', key).execute();
}
