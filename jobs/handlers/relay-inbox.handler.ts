import type { Executor } from '../../db/client.js';
import { findQueuedBefore, findUnqueued, markEnqueued } from '../../db/repositories/inbox.js';
import { processWebhook } from '../definitions/process-webhook.js';
import { relayInboxJob } from '../definitions/relay-inbox.js';
import { Queues } from '../queues.js';
import { defineHandler } from '../types.js';

/** A delivery the intake stored is left to the intake's own add for this long. */
const NEVER_QUEUED_AFTER_MS = 2_000;
/**
 * A queued delivery still unprocessed after this long has its job looked up in Redis. Short
 * enough that deliveries whose jobs vanished (Redis restarted without its data, a failover to a
 * replica that lagged, FLUSHALL) run within a minute; long enough that a backlog is looked up
 * at most once per period.
 */
export const QUEUED_RECHECK_MS = 30_000;

type RelayQueues = Pick<Queues, 'add' | 'jobPresence' | 'requeue'>;

/**
 * The relay: the inbox (database) is the system of record, Redis only a queue. Every delivery
 * still `received` must have a job that will run, whatever happened in Redis:
 *  1. stored but never queued (Redis down or slow, the process died between store and enqueue):
 *     queued here;
 *  2. queued a while ago and still unprocessed: its job is looked up. Missing (Redis lost it) →
 *     added again. Finished without settling the row → replaced: a job failed by BullMQ itself
 *     (stalled more often than allowed after worker crashes, which never reaches our handler and
 *     its onFinalFailure) or completed by a run whose write was lost. A plain add would be
 *     ignored there, since the job id is deterministic and BullMQ keeps finished jobs.
 * Queuing twice is harmless: the handler leaves a delivery that is no longer `received` alone.
 */
export async function relayInbox(
  ctx: { db: Executor; enqueue: RelayQueues; onRequeued?: (count: number) => void },
  limit = 2000,
): Promise<number> {
  let queued = 0;
  for (;;) {
    const ids = await findUnqueued(ctx.db, { minAgeMs: NEVER_QUEUED_AFTER_MS, limit: Math.min(limit - queued, 500) });
    if (ids.length === 0) break;
    await Promise.all(ids.map((id) => ctx.enqueue.add(processWebhook, { inboxId: id })));
    await markEnqueued(ctx.db, ids);
    queued += ids.length;
    if (queued >= limit) break;
  }

  const stale = await findQueuedBefore(ctx.db, { olderThanMs: QUEUED_RECHECK_MS, limit: 500 });
  let requeued = 0;
  if (stale.length) {
    const presence = await ctx.enqueue.jobPresence(
      processWebhook.queue,
      stale.map((id) => processWebhook.jobId!({ inboxId: id })),
    );
    await Promise.all(
      stale.map((id, i) => {
        if (presence[i] === 'pending') return null;
        requeued++;
        return presence[i] === 'missing'
          ? ctx.enqueue.add(processWebhook, { inboxId: id })
          : ctx.enqueue.requeue(processWebhook, { inboxId: id });
      }),
    );
    // Checked now: looked at again only after another period (a long backlog is not re-read
    // every few seconds).
    await markEnqueued(ctx.db, stale);
    if (requeued) ctx.onRequeued?.(requeued);
  }
  return queued + requeued;
}

export default defineHandler(relayInboxJob, {
  handler: async (_p, ctx) => {
    // The worker hands every job its Queues; the relay needs more of it than adding.
    if (!(ctx.enqueue instanceof Queues)) throw new Error('relay-inbox needs the worker’s Queues (job lookups in Redis)');
    let requeued = 0;
    const relayed = await relayInbox({
      db: ctx.db,
      enqueue: ctx.enqueue,
      onRequeued: (n) => {
        requeued = n;
        ctx.logger.warn(
          { requeued: n },
          'queued deliveries had no job that would run (lost from Redis, or failed by BullMQ after crashes); queued again',
        );
      },
    });
    return { relayed, requeued };
  },
});
