import { UnrecoverableError } from 'bullmq';
import { CapaError } from '../../capa/client.js';
import { capaFailed, finishRow, releaseRow } from '../../db/repositories/imports.js';
import type { ImportRowStatus } from '../../db/schema.js';
import type { JobContext } from '../types.js';

type RowKey = { importId: string; rowNo: number; gen: number };

/**
 * What a row does when its Capa call fails:
 *  - 429: rethrown, so the worker pauses the whole `capa` queue for Retry-After without burning
 *    an attempt (the shared limiter) — the row stays queued;
 *  - Capa refused the request (4xx, recorded by the shared create/link jobs as UnrecoverableError):
 *    the row fails with Capa's reason;
 *  - Capa is unwell (5xx, network, timeout — after the client's own retries): the row goes back
 *    to the pool and the import's failure streak grows; at the threshold the import pauses with
 *    the reason on screen rather than failing row after row. A row that keeps failing on its own
 *    fails after IMPORT_ROW_MAX_ATTEMPTS.
 * Returns normally when the failure was recorded on the row.
 */
export async function handleRowCapaFailure(err: unknown, ctx: JobContext, key: RowKey, from: ImportRowStatus[], attemptsSoFar: number): Promise<{ outcome: string }> {
  if (err instanceof CapaError && err.status === 429) throw err;
  if (err instanceof UnrecoverableError) {
    await finishRow(ctx.db, key, from, { status: 'failed', reasonCode: 'capa_refused', reason: err.message.slice(0, 1000) });
    return { outcome: 'failed' };
  }
  if (err instanceof CapaError && err.retryable) {
    const reason = err.message.slice(0, 300);
    const paused = await capaFailed(ctx.db, key.importId, ctx.env.IMPORT_OUTAGE_THRESHOLD, reason);
    if (paused) {
      ctx.logger.warn({ importId: key.importId }, 'import paused: Capa outage');
      // Lazy import: the relay module imports the row jobs, which import this module.
      const { drainImport } = await import('../definitions/import-relay.js');
      await drainImport({ db: ctx.db, env: ctx.env, enqueue: ctx.enqueue as never }, key.importId);
    }
    if (attemptsSoFar + 1 >= ctx.env.IMPORT_ROW_MAX_ATTEMPTS) {
      await finishRow(ctx.db, key, from, { status: 'failed', reasonCode: 'capa_unavailable', reason: `Capa kept failing (${attemptsSoFar + 1} attempts): ${reason}` });
      return { outcome: 'failed' };
    }
    await releaseRow(ctx.db, key, from, { reason: `will retry: ${reason}`, countAttempt: true });
    return { outcome: 'retry-later' };
  }
  throw err;
}

/** Unexpected errors (database, bugs): on the job's last attempt the row fails with the message. */
export async function failRowOnLastAttempt(err: unknown, ctx: JobContext, key: RowKey, from: ImportRowStatus[]): Promise<never> {
  const last = err instanceof UnrecoverableError || ctx.job.attemptsMade + 1 >= (ctx.job.opts.attempts ?? 1);
  if (last) {
    const msg = err instanceof Error ? err.message : String(err);
    await finishRow(ctx.db, key, from, { status: 'failed', reasonCode: 'error', reason: `unexpected error: ${msg.slice(0, 500)}` }).catch(() => undefined);
  }
  throw err;
}
