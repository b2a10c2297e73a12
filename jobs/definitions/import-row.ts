import { z } from 'zod';
import { findImport, finishRow, getRow, releaseRow, updateRowIf, capaSucceeded } from '../../db/repositories/imports.js';
import { findUserByEmail, findUserByExternalId, findUserById, insertUser } from '../../db/repositories/users.js';
import { nowIso } from '../../db/time.js';
import { failRowOnLastAttempt, handleRowCapaFailure } from '../imports/capa-failure.js';
import { defineJob } from '../types.js';
import { createCapaUser } from './create-capa-user.js';
import { importLink } from './import-link.js';

export const ImportRowPayload = z.object({
  importId: z.string().min(1).max(64),
  rowNo: z.number().int().positive(),
  gen: z.number().int().nonnegative(),
});

/**
 * One import row: create the customer here (insertUser), then in Capa (exactly one Capa call, or
 * none when it was already made), then — when the row asks for a link — queue the link step as
 * its own `capa` job so every Capa call passes the shared limiter once.
 *
 * Safe to run twice: the job id carries the row's generation and the handler acts only on a row
 * still `queued` at that generation; the customer is created in the same transaction that records
 * it on the row; the Capa create is claimed in the idempotency table (create-capa-user).
 */
export const importRow = defineJob({
  name: 'import-row',
  queue: 'capa',
  schema: ImportRowPayload,
  jobId: (p) => `improw-${p.importId}-${p.rowNo}-${p.gen}`,
  // Lower priority than a single customer created from the console: an import never holds an
  // operator's click behind thousands of rows.
  options: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, priority: 10, removeOnComplete: true, removeOnFail: { age: 7 * 86400 } },
  handler: async (p, ctx) => {
    const row = await getRow(ctx.db, p.importId, p.rowNo);
    if (!row || row.gen !== p.gen || row.status !== 'queued') return { skipped: 'stale job' };
    const imp = await findImport(ctx.db, p.importId);
    if (!imp) return { skipped: 'import gone' };
    if (imp.status === 'cancelled') {
      await finishRow(ctx.db, p, ['queued'], { status: 'cancelled', reasonCode: 'cancelled', reason: 'import cancelled before this row ran' });
      return { outcome: 'cancelled' };
    }
    if (imp.status !== 'running') {
      await releaseRow(ctx.db, p, ['queued']);
      return { outcome: 'released', importStatus: imp.status };
    }
    try {
      let userId = row.userId;
      if (!userId) {
        const created = await createLocalUser(ctx, p, row, imp.committedBy);
        if (!created) return { outcome: 'failed' };
        userId = created;
      }
      ctx.setUser(userId);

      let user = await findUserById(ctx.db, userId);
      if (!user?.capaUserId) {
        try {
          await createCapaUser.handler({ userId, requestedBy: imp.committedBy, sendLink: null }, ctx);
        } catch (err) {
          return await handleRowCapaFailure(err, ctx, p, ['queued'], row.attempts);
        }
        await capaSucceeded(ctx.db, p.importId);
        user = await findUserById(ctx.db, userId);
      }
      if (row.sendLink) {
        const moved = await updateRowIf(ctx.db, p, ['queued'], { status: 'linking', capaUserId: user?.capaUserId ?? null, enqueuedAt: nowIso() });
        if (moved) await ctx.enqueue.add(importLink, p);
        return { outcome: 'linking' };
      }
      await finishRow(ctx.db, p, ['queued'], { status: 'done', reasonCode: null, reason: null, capaUserId: user?.capaUserId ?? null });
      return { outcome: 'done' };
    } catch (err) {
      return failRowOnLastAttempt(err, ctx, p, ['queued']);
    }
  },
});

/** insertUser and the row's user id in one transaction; a clash with a customer made since the dry run fails the row. */
async function createLocalUser(ctx: Parameters<typeof importRow.handler>[1], key: z.infer<typeof ImportRowPayload>, row: NonNullable<Awaited<ReturnType<typeof getRow>>>, committedBy: string | null): Promise<string | null> {
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      const u = await insertUser(trx, {
        externalUserId: row.externalUserId,
        email: row.email!,
        type: row.type === 'BUSINESS' ? 'BUSINESS' : 'INDIVIDUAL',
        alias: row.alias,
        country: row.country === 'MX' || row.country === 'DO' ? row.country : null,
        createdBy: committedBy,
      });
      const ok = await updateRowIf(trx, key, ['queued'], { userId: u.id });
      if (!ok) throw new StaleRow();
      return u.id;
    });
  } catch (err) {
    if (err instanceof StaleRow) return null;
    if (!/unique|duplicate/i.test(String((err as Error).message))) throw err;
    const clash = (row.externalUserId && !row.generatedId ? await findUserByExternalId(ctx.db, row.externalUserId) : undefined) ?? (row.email ? await findUserByEmail(ctx.db, row.email) : undefined);
    await finishRow(ctx.db, key, ['queued'], {
      status: 'failed',
      reasonCode: 'exists',
      reason: `already exists here (customer ${clash?.externalUserId ?? 'with the same e-mail or id'}, created after the dry run)`,
    });
    return null;
  }
}

class StaleRow extends Error {}
