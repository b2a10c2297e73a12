import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { countHeldForRetention, dueForRetention, type RetentionCursor } from '../db/repositories/erasure.js';
import { finishRetentionRun, startRetentionRun, type StateCounts } from '../db/repositories/retention.js';
import type { Db } from '../db/client.js';
import { dueStates, type RetentionPolicy } from '../domain/retention.js';
import { storeMessage, storedMessage } from '../lib/stored-message.js';
import type { Logger } from '../lib/logger.js';
import { eraseCustomer } from './erasure.js';

export interface RetentionResult {
  runId: string;
  erased: StateCounts;
  held: StateCounts;
  failed: number;
}

/** The reason kept on a retention erasure: a catalogue code and its values, worded when read. */
export const retentionReason = (state: string, years: number) =>
  storeMessage(storedMessage('evidence:retention.reason', { state, count: years }));

/**
 * One pass of the retention policy: every customer past the years their state keeps them is
 * erased through the same path as an admin's erasure (legal hold and state re-checked in its
 * transaction), each with its audit entry, and the run is recorded with its counts. Customers
 * come a page at a time from a cursor, so a customer whose erasure fails is counted, logged and
 * left for the next run instead of stopping this one. Safe to run twice: an erased customer is
 * never due again.
 */
export async function applyRetention(
  deps: { db: Db; logger: Logger },
  policy: RetentionPolicy,
  opts: { jobId: string | null; now?: number; pageSize?: number },
): Promise<RetentionResult> {
  const { db, logger } = deps;
  const runId = await startRetentionRun(db, { jobId: opts.jobId, policy });
  const erased: StateCounts = {};
  const held: StateCounts = {};
  let failed = 0;
  for (const { state, years, before } of dueStates(policy, opts.now ?? Date.now())) {
    const reason = retentionReason(state, years);
    let after: RetentionCursor | undefined;
    for (;;) {
      const page = await dueForRetention(db, state, before, opts.pageSize ?? 200, after);
      if (!page.length) break;
      after = page[page.length - 1];
      for (const { id } of page) {
        try {
          const r = await eraseCustomer(
            db,
            id,
            { kind: 'retention', reason, requestedBy: null, runId },
            {
              due: { state, before },
              audit: (e) => ({
                actor: 'system',
                action: AUDIT_ACTIONS.evidenceRetention,
                targetType: 'user',
                targetId: id,
                outcome: 'ok',
                detail: { erasureId: e.erasureId, runId, state, years, report: e.report },
              }),
            },
          );
          if (r.code === 'erased') erased[state] = (erased[state] ?? 0) + 1;
        } catch (err) {
          failed++;
          logger.error({ userId: id, runId, err: (err as Error).message }, 'retention erasure failed');
        }
      }
    }
    // Counted after the scan, so a hold placed while it ran is counted too.
    const stillHeld = await countHeldForRetention(db, state, before);
    if (stillHeld) held[state] = stillHeld;
  }
  await finishRetentionRun(db, runId, { erased, held, failed });
  return { runId, erased, held, failed };
}
