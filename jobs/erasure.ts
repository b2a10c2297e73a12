import type { AuditInput } from '../db/repositories/audit.js';
import { appendAudit } from '../db/repositories/audit.js';
import { eraseCustomerData, recordErasure, userForErasure, type ErasureReport } from '../db/repositories/erasure.js';
import type { Db } from '../db/client.js';
import type { Erasure, KycState } from '../db/schema.js';
import { nowIso } from '../lib/time.js';

export type EraseOutcome =
  { code: 'erased'; report: ErasureReport; erasureId: string } | { code: 'not_found' | 'held' | 'already_erased' | 'not_due' };

export interface EraseOptions {
  /**
   * Retention: erase only if the customer is still in `state` since before `before` — a state
   * change between the scan and the erasure starts a new retention period.
   */
  due?: { state: KycState; before: string };
  /** The audit entry of a completed erasure, written in the same transaction (the system's erasures). */
  audit?: (r: { erasureId: string; report: ErasureReport }) => AuditInput;
}

/**
 * Erases one customer's personal data (on request or by the retention policy) unless a legal hold
 * is on, and records what was erased. The hold is read inside the same transaction as the
 * erasure (the row locked on PostgreSQL), so a hold placed at the same moment wins. Queued jobs
 * need no clean-up: their payloads carry ids, never personal data (a job that runs after the
 * erasure finds a tombstone).
 */
export async function eraseCustomer(
  db: Db,
  userId: string,
  why: { kind: Erasure['kind']; reason: string; requestedBy: string | null; runId?: string | null },
  opts: EraseOptions = {},
): Promise<EraseOutcome> {
  return db.transaction().execute(async (trx) => {
    const user = await userForErasure(trx, userId);
    if (!user) return { code: 'not_found' } as const;
    if (user.legalHold) return { code: 'held' } as const;
    if (user.erasedAt) return { code: 'already_erased' } as const;
    if (opts.due && (user.kycState !== opts.due.state || !(user.kycStateChangedAt < opts.due.before))) {
      return { code: 'not_due' } as const;
    }
    const at = nowIso();
    const report = await eraseCustomerData(trx, userId, at);
    const row = await recordErasure(trx, { userId, ...why, report, at });
    if (opts.audit) await appendAudit(trx, opts.audit({ erasureId: row.id, report }));
    return { code: 'erased', report, erasureId: row.id } as const;
  });
}
