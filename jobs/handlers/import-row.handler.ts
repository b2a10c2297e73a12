import type { z } from 'zod';
import { capaSucceeded, findImport, finishRow, getRow, releaseRow, updateRowIf } from '../../db/repositories/imports.js';
import { findUserByEmail, findUserByExternalId, findUserById, insertUser } from '../../db/repositories/users.js';
import type { ImportRow, User } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';
import { claimCapaCreate, createInCapa, type CreateClaim } from '../capa-create.js';
import { importLink } from '../definitions/import-link.js';
import { importRow, type ImportRowPayload } from '../definitions/import-row.js';
import { failRowOnLastAttempt, handleRowCapaFailure } from '../imports/orchestration.js';
import { rowReason } from '../imports/reasons.js';
import { defineHandler, type JobContext } from '../types.js';

type RowKey = z.infer<typeof ImportRowPayload>;

/**
 * The customer and the Capa-create claim (the same one create-capa-user takes) are committed
 * together before Capa is called, and the outcome, the customer's Capa id and the row's status
 * are committed together after it: the single create's semantics in two commits instead of five
 * (with SQLite's synchronous=FULL each commit is an fsync, and imports are write-bound).
 */
export default defineHandler(importRow, {
  handler: async (p, ctx) => {
    const row = await getRow(ctx.db, p.importId, p.rowNo);
    if (!row || row.gen !== p.gen || row.status !== 'queued') return { skipped: 'stale job' };
    const imp = await findImport(ctx.db, p.importId);
    if (!imp) return { skipped: 'import gone' };
    if (imp.status === 'cancelled') {
      await finishRow(ctx.db, p, ['queued'], {
        status: 'cancelled',
        reasonCode: 'cancelled',
        reason: rowReason('cancelled_before_run'),
      });
      return { outcome: 'cancelled' };
    }
    if (imp.status !== 'running') {
      await releaseRow(ctx.db, p, ['queued']);
      return { outcome: 'released', importStatus: imp.status };
    }
    try {
      const prepared = await prepare(ctx, p, row, imp.committedBy);
      if (!prepared) return { outcome: 'failed' };
      ctx.setUser(prepared.user.id);
      let next: 'linking' | 'done' | 'stale' | undefined;
      try {
        ({ outcome: next } = await createInCapa(ctx, prepared.user, {
          claimed: prepared.claimed,
          withOutcome: async (trx, { capaUserId, called }) => {
            if (called) await capaSucceeded(trx, p.importId);
            if (row.sendLink) {
              return (await updateRowIf(trx, p, ['queued'], { status: 'linking', capaUserId, enqueuedAt: nowIso() })) ? 'linking' : 'stale';
            }
            return (await finishRow(trx, p, ['queued'], { status: 'done', reasonCode: null, reason: null, capaUserId })) ? 'done' : 'stale';
          },
        }));
      } catch (err) {
        return await handleRowCapaFailure(err, ctx, p, ['queued'], row.attempts);
      }
      if (next === 'linking') await ctx.enqueue.add(importLink, p);
      return { outcome: next };
    } catch (err) {
      return failRowOnLastAttempt(err, ctx, p, ['queued']);
    }
  },
});

/**
 * One commit before Capa is called: the customer here (first run only), the row's link to it and
 * the claim of the Capa create. Returns null when the row failed (a customer with the same
 * e-mail or id was created here after the dry run).
 */
async function prepare(
  ctx: JobContext,
  key: RowKey,
  row: ImportRow,
  committedBy: string | null,
): Promise<{ user: User; claimed: CreateClaim } | null> {
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      let user = row.userId ? await findUserById(trx, row.userId) : undefined;
      if (!user) {
        user = await insertUser(trx, {
          externalUserId: row.externalUserId,
          email: row.email!,
          type: row.type === 'BUSINESS' ? 'BUSINESS' : 'INDIVIDUAL',
          alias: row.alias,
          country: row.country === 'MX' || row.country === 'DO' ? row.country : null,
          createdBy: committedBy,
        });
        if (!(await updateRowIf(trx, key, ['queued'], { userId: user.id }))) throw new StaleRow();
      }
      if (user.capaUserId) return { user, claimed: { capaUserId: user.capaUserId } };
      return { user, claimed: await claimCapaCreate(trx, user.externalUserId) };
    });
  } catch (err) {
    if (err instanceof StaleRow) return null;
    if (!/unique|duplicate/i.test(String((err as Error).message))) throw err;
    const clash =
      (row.externalUserId && !row.generatedId ? await findUserByExternalId(ctx.db, row.externalUserId) : undefined) ??
      (row.email ? await findUserByEmail(ctx.db, row.email) : undefined);
    await finishRow(ctx.db, key, ['queued'], {
      status: 'failed',
      reasonCode: 'exists',
      reason: clash ? rowReason('exists_after_dry_run', { customer: clash.externalUserId }) : rowReason('exists_after_dry_run_unknown'),
    });
    return null;
  }
}

class StaleRow extends Error {}
