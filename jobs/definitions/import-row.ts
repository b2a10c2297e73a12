import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { CapaError, describeCapaError } from '../../capa/client.js';
import { claim, settle } from '../../db/repositories/idempotency.js';
import { capaSucceeded, findImport, finishRow, getRow, releaseRow, updateRowIf } from '../../db/repositories/imports.js';
import { findUserByEmail, findUserByExternalId, findUserById, insertUser, markCapaCreated, markCapaSyncFailed } from '../../db/repositories/users.js';
import type { ImportRow } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';
import { failRowOnLastAttempt, handleRowCapaFailure } from '../imports/capa-failure.js';
import { defineJob, type JobContext } from '../types.js';
import { importLink } from './import-link.js';

export const ImportRowPayload = z.object({
  importId: z.string().min(1).max(64),
  rowNo: z.number().int().positive(),
  gen: z.number().int().nonnegative(),
});
type RowKey = z.infer<typeof ImportRowPayload>;

/**
 * One import row: create the customer here (insertUser), then in Capa (at most one Capa call),
 * then — when the row asks for a link — queue the link step as its own `capa` job, so every Capa
 * call passes the shared limiter once.
 *
 * Safe to run twice: the job id carries the row's generation and the handler acts only on a row
 * still `queued` at that generation; the customer and the Capa-create claim (idempotency key
 * `capa-create:<externalUserId>`, the same key create-capa-user uses) are committed together
 * before Capa is called, and the outcome, the customer's Capa id and the row's status are
 * committed together after it. Same semantics as create-capa-user, in two commits instead of
 * five: with SQLite's synchronous=FULL each commit is an fsync, and imports are write-bound.
 */
export const importRow = defineJob({
  name: 'import-row',
  queue: 'capa',
  schema: ImportRowPayload,
  jobId: (p) => `improw-${p.importId}-${p.rowNo}-${p.gen}`,
  // Lower priority than a single customer created from the console: an import never holds an
  // operator's click behind thousands of rows.
  options: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, priority: 10, removeOnComplete: true, removeOnFail: { age: 7 * 86400 } },
  // The import row records every outcome (status, reason, customer); a job_runs pair per row
  // would double the writes of a 100k-row import.
  trackRuns: false,
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
      const prepared = await prepare(ctx, p, row, imp.committedBy);
      if (!prepared) return { outcome: 'failed' };
      const { userId, externalUserId } = prepared;
      ctx.setUser(userId);
      let capaUserId = prepared.capaUserId;
      if (!capaUserId) {
        const user = (await findUserById(ctx.db, userId))!;
        try {
          capaUserId = (await ctx.capa.createUser({ type: user.type, email: user.email, externalUserId, ...(user.alias ? { alias: user.alias } : {}) })).userId;
        } catch (err) {
          if (err instanceof CapaError && !err.retryable) {
            const reused = prepared.inDoubt && err.status === 409;
            const message = reused
              ? 'Capa already has this externalUserId and an earlier attempt did not record its Capa id (the process may have stopped mid-call). Ask Capa for the userId.'
              : describeCapaError(err);
            await ctx.db.transaction().execute(async (trx) => {
              await settle(trx, createKey(externalUserId), 'failed', { status: err.status, code: err.code });
              await markCapaSyncFailed(trx, userId, message);
            });
            return await handleRowCapaFailure(new UnrecoverableError(message), ctx, p, ['queued'], row.attempts);
          }
          return await handleRowCapaFailure(err, ctx, p, ['queued'], row.attempts);
        }
        await capaSucceeded(ctx.db, p.importId);
      }
      const final = capaUserId;
      const next = await ctx.db.transaction().execute(async (trx) => {
        await settle(trx, createKey(externalUserId), 'done', { userId: final });
        const u = await findUserById(trx, userId);
        if (!u?.capaUserId) await markCapaCreated(trx, userId, final);
        if (row.sendLink) {
          return (await updateRowIf(trx, p, ['queued'], { status: 'linking', capaUserId: final, enqueuedAt: nowIso() })) ? 'linking' : 'stale';
        }
        return (await finishRow(trx, p, ['queued'], { status: 'done', reasonCode: null, reason: null, capaUserId: final })) ? 'done' : 'stale';
      });
      if (next === 'linking') await ctx.enqueue.add(importLink, p);
      return { outcome: next };
    } catch (err) {
      return failRowOnLastAttempt(err, ctx, p, ['queued']);
    }
  },
});

const createKey = (externalUserId: string) => `capa-create:${externalUserId}`;

/**
 * One commit before Capa is called: the customer here (first run only), the row's link to it and
 * the claim of the Capa create. Returns null when the row failed (a customer with the same
 * e-mail or id was created here after the dry run).
 */
async function prepare(ctx: JobContext, key: RowKey, row: ImportRow, committedBy: string | null): Promise<{ userId: string; externalUserId: string; capaUserId: string | null; inDoubt: boolean } | null> {
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      let userId = row.userId;
      let user = userId ? await findUserById(trx, userId) : undefined;
      if (!user) {
        user = await insertUser(trx, {
          externalUserId: row.externalUserId,
          email: row.email!,
          type: row.type === 'BUSINESS' ? 'BUSINESS' : 'INDIVIDUAL',
          alias: row.alias,
          country: row.country === 'MX' || row.country === 'DO' ? row.country : null,
          createdBy: committedBy,
        });
        userId = user.id;
        if (!(await updateRowIf(trx, key, ['queued'], { userId }))) throw new StaleRow();
      }
      if (user.capaUserId) return { userId: user.id, externalUserId: user.externalUserId, capaUserId: user.capaUserId, inDoubt: false };
      const c = await claim(trx, createKey(user.externalUserId), 'capa-create');
      if (!c.fresh && c.status === 'done') return { userId: user.id, externalUserId: user.externalUserId, capaUserId: (c.result as { userId: string }).userId, inDoubt: false };
      // `started` from an earlier attempt: it may have reached Capa (the process stopped mid-call).
      return { userId: user.id, externalUserId: user.externalUserId, capaUserId: null, inDoubt: !c.fresh && c.status === 'started' };
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
