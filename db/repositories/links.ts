import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FINAL_STATES, type Database, type KycLink } from '../schema.js';
import type { Reinvitation } from '../../domain/state-machine.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

/** Records a new active link and supersedes the user's previous active ones (one transaction). */
export async function insertLink(
  trx: Transaction<Database>,
  input: { userId: string; url: string; country: 'MX' | 'DO'; redirectUri: string | null; createdBy: string | null },
): Promise<KycLink> {
  const now = nowIso();
  await trx
    .updateTable('kycLinks')
    .set({ status: 'superseded', endedAt: now })
    .where('userId', '=', input.userId)
    .where('status', '=', 'active')
    .execute();
  const row: KycLink = { id: randomUUID(), ...input, status: 'active', createdAt: now, endedAt: null };
  await trx.insertInto('kycLinks').values(row).execute();
  await trx.updateTable('users').set({ linkExpired: 0, country: input.country, updatedAt: now }).where('id', '=', input.userId).execute();
  return row;
}

export async function linksForUser(db: Executor, userId: string): Promise<KycLink[]> {
  return db.selectFrom('kycLinks').selectAll().where('userId', '=', userId).orderBy('createdAt', 'desc').execute();
}

/** The customer's links that expired unused (the link lifetime passed). */
export async function expiredLinksForUser(db: Executor, userId: string): Promise<Array<Pick<KycLink, 'id' | 'endedAt' | 'createdAt'>>> {
  return db
    .selectFrom('kycLinks')
    .select(['id', 'endedAt', 'createdAt'])
    .where('userId', '=', userId)
    .where('status', '=', 'expired')
    .execute();
}

export async function activeLink(db: Executor, userId: string): Promise<KycLink | undefined> {
  return db
    .selectFrom('kycLinks')
    .selectAll()
    .where('userId', '=', userId)
    .where('status', '=', 'active')
    .orderBy('createdAt', 'desc')
    .executeTakeFirst();
}

/**
 * The customer's latest re-invitation: the last time a new link moved them from a final outcome
 * back to LINK_ISSUED (the state machine does that only from REJECTED). A link issued while a
 * verification is under way or done changes no state and re-invites nobody.
 */
export async function lastReinvitation(db: Executor, userId: string): Promise<Reinvitation | undefined> {
  const row = await db
    .selectFrom('stateChanges')
    .select(['fromState', 'at'])
    .where('userId', '=', userId)
    .where('toState', '=', 'LINK_ISSUED')
    .where('fromState', 'in', [...FINAL_STATES])
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { from: row.fromState, at: row.at } : undefined;
}

/** lastReinvitation for several customers in one query (those never re-invited are absent). */
export async function lastReinvitations(db: Executor, userIds: string[]): Promise<Map<string, Reinvitation>> {
  const out = new Map<string, Reinvitation>();
  if (userIds.length === 0) return out;
  const rows = await db
    .selectFrom('stateChanges')
    .select(['userId', 'fromState', 'at'])
    .where('userId', 'in', userIds)
    .where('toState', '=', 'LINK_ISSUED')
    .where('fromState', 'in', [...FINAL_STATES])
    .orderBy('id', 'asc')
    .execute();
  // Ascending: the last row seen for a customer is its latest.
  for (const r of rows) out.set(r.userId, { from: r.fromState, at: r.at });
  return out;
}
