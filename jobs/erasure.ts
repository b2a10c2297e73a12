import { eraseCustomerData, recordErasure, type ErasureReport } from '../db/repositories/erasure.js';
import { findUserById } from '../db/repositories/users.js';
import type { Db } from '../db/client.js';
import type { Erasure } from '../db/schema.js';
import { nowIso } from '../lib/time.js';

export type EraseOutcome = { code: 'erased'; report: ErasureReport; erasureId: string } | { code: 'not_found' | 'held' | 'already_erased' };

/**
 * Erases one customer's personal data (on request or by the retention policy) unless a legal hold
 * is on, and records what was erased. The hold is read inside the same transaction as the
 * erasure, so a hold placed at the same moment wins. Queued jobs need no clean-up: their payloads
 * carry ids, never personal data (a job that runs after the erasure finds a tombstone).
 */
export async function eraseCustomer(
  db: Db,
  userId: string,
  why: { kind: Erasure['kind']; reason: string; requestedBy: string | null },
): Promise<EraseOutcome> {
  return db.transaction().execute(async (trx) => {
    const user = await findUserById(trx, userId);
    if (!user) return { code: 'not_found' } as const;
    if (user.legalHold) return { code: 'held' } as const;
    if (user.erasedAt) return { code: 'already_erased' } as const;
    const at = nowIso();
    const report = await eraseCustomerData(trx, userId, at);
    const row = await recordErasure(trx, { userId, ...why, report, at });
    return { code: 'erased', report, erasureId: row.id } as const;
  });
}
