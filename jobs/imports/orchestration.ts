import { UnrecoverableError, type Queue } from 'bullmq';
import { CapaError, capaErrorCode } from '../../capa/client.js';
import type { Db } from '../../db/client.js';
import { appendAudit } from '../../db/repositories/audit.js';
import {
  capaFailed,
  claimPendingRows,
  completeIfDone,
  finishRow,
  findImport,
  importsWithStatus,
  inFlightCount,
  inFlightRows,
  releaseRow,
  resumeImport,
  staleInFlightRows,
  touchEnqueued,
} from '../../db/repositories/imports.js';
import type { ImportRowStatus } from '../../db/schema.js';
import type { Env } from '../../lib/config.js';
import { readMessages, storeMessage, storedMessage } from '../../lib/stored-message.js';
import { nowIso } from '../../lib/time.js';
import { importLink } from '../definitions/import-link.js';
import { importRow } from '../definitions/import-row.js';
import type { Enqueuer, JobContext } from '../types.js';
import { rowReason } from './reasons.js';

/** An import paused because Capa kept failing (what the automatic resume refers back to). */
const OUTAGE = 'imports:status_reasons.outage';

/**
 * How an import's rows move through the queue: feeding a running import (a bounded window of
 * queued rows), draining it on pause or cancel, the scheduled relay, and what a row does when its
 * Capa call fails (which may pause and drain the import). The row handlers, the relay handler
 * and the imports facade all come here; it knows the row jobs only by their declarations.
 */

export interface RelayDeps {
  db: Db;
  env: Env;
  enqueue: Enqueuer & { queue?: (name: 'capa') => Queue };
}

/** Rows kept queued per import: ~5 s of work at the shared Capa rate, so the queue never runs dry between relay ticks. */
export function windowSize(env: Env): number {
  return Math.min(5000, Math.max(100, Math.ceil(env.CAPA_RATE_LIMIT_PER_SEC * 5)));
}

/** A queued row whose job has not run for this long is checked: its job may have been lost with Redis. */
const STALE_MS = 60_000;

/**
 * Feeds one running import: claims pending rows up to the window and queues their jobs, re-adds
 * jobs of rows that were stored as queued but whose job is gone (deterministic ids make that
 * harmless), and completes the import when nothing is left. Called by the scheduled relay, and by
 * the web process right after commit/resume/retry so work starts at once.
 */
export async function feedImport(deps: RelayDeps, importId: string): Promise<{ queued: number; requeued: number; completed: boolean }> {
  const imp = await findImport(deps.db, importId);
  if (!imp || imp.status !== 'running') return { queued: 0, requeued: 0, completed: false };
  const room = windowSize(deps.env) - (await inFlightCount(deps.db, importId));
  const claimed = await claimPendingRows(deps.db, importId, room);
  // Stored first, queued second: a crash in between leaves `queued` rows without jobs, which the
  // stale check below queues again under the same ids.
  for (const c of claimed) await deps.enqueue.add(importRow, { importId, rowNo: c.rowNo, gen: c.gen });

  let requeued = 0;
  const stale = await staleInFlightRows(deps.db, importId, STALE_MS);
  if (stale.length) {
    const q = deps.enqueue.queue?.('capa');
    const touched: number[] = [];
    for (const r of stale) {
      const def = r.status === 'linking' ? importLink : importRow;
      const payload = { importId, rowNo: r.rowNo, gen: r.gen };
      const job = q ? await q.getJob(def.jobId!(payload)) : undefined;
      const state = job ? await job.getState() : 'missing';
      if (state === 'failed') {
        await finishRow(deps.db, payload, [r.status], {
          status: 'failed',
          reasonCode: 'error',
          reason: rowReason('job_failed', { detail: String(job?.failedReason ?? '').slice(0, 500) }),
        });
        continue;
      }
      if (state === 'missing' || state === 'unknown') {
        await deps.enqueue.add(def, payload);
        requeued++;
      }
      touched.push(r.rowNo);
    }
    await touchEnqueued(deps.db, importId, touched);
  }

  const completed = claimed.length === 0 && (await completeIfDone(deps.db, importId));
  if (completed) {
    const fin = await findImport(deps.db, importId);
    await appendAudit(deps.db, {
      actor: 'system',
      action: 'import.completed',
      targetType: 'import',
      targetId: importId,
      outcome: 'ok',
      detail: { fileName: fin?.fileName ?? null },
    });
  }
  return { queued: claimed.length, requeued, completed };
}

/**
 * After a pause or cancel: takes this import's waiting jobs out of the queue at once (a job
 * already running finishes its step) and puts their rows back to pending — or cancelled — so a
 * paused import stops using the shared Capa limiter straight away.
 */
export async function drainImport(deps: RelayDeps, importId: string): Promise<number> {
  const q = deps.enqueue.queue?.('capa');
  const imp = await findImport(deps.db, importId);
  if (!q || !imp || (imp.status !== 'paused' && imp.status !== 'cancelled')) return 0;
  const rows = await inFlightRows(deps.db, importId);
  let drained = 0;
  for (const r of rows) {
    const payload = { importId, rowNo: r.rowNo, gen: r.gen };
    const def = r.status === 'linking' ? importLink : importRow;
    if ((await q.remove(def.jobId!(payload))) !== 1) continue;
    const ok =
      imp.status === 'cancelled'
        ? await finishRow(deps.db, payload, [r.status], {
            status: 'cancelled',
            reasonCode: 'cancelled',
            reason: rowReason(r.status === 'linking' ? 'cancelled_link_not_sent' : 'cancelled_before_run'),
          })
        : await releaseRow(deps.db, payload, [r.status]);
    if (ok) drained++;
  }
  return drained;
}

/** Every running import is fed; an import paused by a Capa outage is resumed after the probe delay. */
export async function relayImports(deps: RelayDeps): Promise<{ imports: number; queued: number }> {
  let queued = 0;
  const running = await importsWithStatus(deps.db, 'running');
  for (const imp of running) queued += (await feedImport(deps, imp.id)).queued;

  const probeMs = deps.env.IMPORT_OUTAGE_PROBE_SECONDS * 1000;
  if (probeMs > 0) {
    for (const imp of await importsWithStatus(deps.db, 'paused')) {
      if (imp.pauseKind !== 'outage' || Date.now() - Date.parse(imp.statusChangedAt) < probeMs) continue;
      // One more failure pauses it again at once; one success clears the streak.
      // Says what paused it, with the outage's own values (how many failures, the last one).
      const was = readMessages(imp.statusReason)?.[0];
      const resumed = await resumeImport(deps.db, imp.id, {
        streak: Math.max(0, deps.env.IMPORT_OUTAGE_THRESHOLD - 1),
        reason: storeMessage(
          was?.code === OUTAGE
            ? storedMessage('imports:status_reasons.auto_resumed', was.values)
            : storedMessage('imports:status_reasons.auto_resumed_plain'),
        ),
      });
      if (resumed) {
        await appendAudit(deps.db, {
          actor: 'system',
          action: 'import.auto_resume',
          targetType: 'import',
          targetId: imp.id,
          outcome: 'ok',
          detail: { after: imp.statusReason },
        });
        queued += (await feedImport(deps, imp.id)).queued;
      }
    }
  }
  return { imports: running.length, queued };
}

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
export async function handleRowCapaFailure(
  err: unknown,
  ctx: JobContext,
  key: RowKey,
  from: ImportRowStatus[],
  attemptsSoFar: number,
): Promise<{ outcome: string }> {
  if (err instanceof CapaError && err.status === 429) throw err;
  if (err instanceof UnrecoverableError) {
    // The job's own words (Capa's refusal as describeCapaError put it): the page reads them back as a code.
    await finishRow(ctx.db, key, from, { status: 'failed', reasonCode: 'capa_refused', reason: err.message.slice(0, 1000) });
    return { outcome: 'failed' };
  }
  if (err instanceof CapaError && err.retryable) {
    const { code, values } = capaErrorCode(err);
    // `capaError` names the catalogue entry (capa:errors.<code>) the reason nests; its values come along.
    const last = { ...values, capaError: code };
    const paused = await capaFailed(ctx.db, key.importId, ctx.env.IMPORT_OUTAGE_THRESHOLD, (failures) =>
      storeMessage(storedMessage(OUTAGE, { ...last, failures, at: nowIso() })),
    );
    if (paused) {
      ctx.logger.warn({ importId: key.importId }, 'import paused: Capa outage');
      await drainImport({ db: ctx.db, env: ctx.env, enqueue: ctx.enqueue as RelayDeps['enqueue'] }, key.importId);
    }
    if (attemptsSoFar + 1 >= ctx.env.IMPORT_ROW_MAX_ATTEMPTS) {
      await finishRow(ctx.db, key, from, {
        status: 'failed',
        reasonCode: 'capa_unavailable',
        reason: rowReason('capa_kept_failing', { ...last, attempts: attemptsSoFar + 1 }),
      });
      return { outcome: 'failed' };
    }
    await releaseRow(ctx.db, key, from, { reason: rowReason('will_retry', last), countAttempt: true });
    return { outcome: 'retry-later' };
  }
  throw err;
}

/** Unexpected errors (database, bugs): on the job's last attempt the row fails with the message. */
export async function failRowOnLastAttempt(err: unknown, ctx: JobContext, key: RowKey, from: ImportRowStatus[]): Promise<never> {
  const last = err instanceof UnrecoverableError || ctx.job.attemptsMade + 1 >= (ctx.job.opts.attempts ?? 1);
  if (last) {
    const msg = err instanceof Error ? err.message : String(err);
    await finishRow(ctx.db, key, from, {
      status: 'failed',
      reasonCode: 'error',
      reason: rowReason('unexpected', { detail: msg.slice(0, 500) }),
    }).catch(() => undefined);
  }
  throw err;
}
