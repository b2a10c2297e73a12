import { randomUUID } from 'node:crypto';
import type { KycDetailsRow, KycState } from '../schema.js';
import { decryptJson, encryptJson, type DataKey } from '../encryption.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

export async function insertDetailsSnapshot(
  db: Executor,
  input: { userId: string; details: unknown; verificationResult: string | null; mappedState: KycState | null; cause: string | null },
  keys: DataKey[],
): Promise<KycDetailsRow> {
  const { payload, keyId } = encryptJson(input.details, keys[0]);
  // A customer's results are ordered by when they were fetched (the latest is the one shown, the
  // dossier lists them in order): two fetched in the same millisecond must not tie.
  const last = await db
    .selectFrom('kycDetails')
    .select('fetchedAt')
    .where('userId', '=', input.userId)
    .orderBy('fetchedAt', 'desc')
    .limit(1)
    .executeTakeFirst();
  let fetchedAt = nowIso();
  if (last && last.fetchedAt >= fetchedAt) fetchedAt = new Date(Date.parse(last.fetchedAt) + 1).toISOString();
  const row: KycDetailsRow = {
    id: randomUUID(),
    userId: input.userId,
    fetchedAt,
    verificationResult: input.verificationResult,
    mappedState: input.mappedState,
    payload,
    keyId,
    cause: input.cause,
  };
  await db.insertInto('kycDetails').values(row).execute();
  return row;
}

export async function latestDetails<T = unknown>(
  db: Executor,
  userId: string,
  keys: DataKey[],
): Promise<(Omit<KycDetailsRow, 'payload'> & { details: T }) | undefined> {
  const row = await db.selectFrom('kycDetails').selectAll().where('userId', '=', userId).orderBy('fetchedAt', 'desc').executeTakeFirst();
  if (!row) return undefined;
  const { payload, ...rest } = row;
  return { ...rest, details: decryptJson<T>(payload, keys) };
}

/** Every KYC result on record for a customer, oldest first, decrypted (the dossier's history). */
export async function detailsHistory<T = unknown>(
  db: Executor,
  userId: string,
  keys: DataKey[],
): Promise<Array<Omit<KycDetailsRow, 'payload'> & { details: T }>> {
  const rows = await db
    .selectFrom('kycDetails')
    .selectAll()
    .where('userId', '=', userId)
    .orderBy('fetchedAt', 'asc')
    .orderBy('id', 'asc')
    .execute();
  return rows.map(({ payload, ...rest }) => ({ ...rest, details: decryptJson<T>(payload, keys) }));
}
