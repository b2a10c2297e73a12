import { backfillDrift } from '../db/repositories/drift.js';
import { notifyOnLinkIssued, notifyOnStateChanged } from './notifications/hooks.js';
import type { JobContext, LinkIssuedEvent, StateChangedEvent } from './types.js';

/**
 * What happens after a link is issued or a customer's state changes, listed here and nowhere
 * else (no registration by import). Hooks run in order once the change is committed; each one
 * catches its own failures (the change stands, and the sweeps repair what a hook left undone).
 * Only jobs/state-change.ts and the link handler emit them.
 */

/** A poll that moved a customer's state is drift: its entry is recorded right away (the refresh scan's backfill catches any this misses). */
async function recordPollDrift(ctx: JobContext, e: StateChangedEvent): Promise<void> {
  if (!e.cause.startsWith('poll:')) return;
  try {
    await backfillDrift(ctx.db, { userId: e.userId, limit: 50 });
  } catch (err) {
    ctx.logger.warn({ userId: e.userId, err: (err as Error).message }, 'could not record drift entry (the next scan will)');
  }
}

const LINK_ISSUED_HOOKS: ReadonlyArray<(ctx: JobContext, e: LinkIssuedEvent) => Promise<void>> = [notifyOnLinkIssued];

const STATE_CHANGED_HOOKS: ReadonlyArray<(ctx: JobContext, e: StateChangedEvent) => Promise<void>> = [
  recordPollDrift,
  notifyOnStateChanged,
];

export async function emitLinkIssued(ctx: JobContext, e: LinkIssuedEvent): Promise<void> {
  for (const h of LINK_ISSUED_HOOKS) await h(ctx, e);
}

export async function emitStateChanged(ctx: JobContext, e: StateChangedEvent): Promise<void> {
  for (const h of STATE_CHANGED_HOOKS) await h(ctx, e);
}

/**
 * The state-changed hooks of changes committed together (each a different customer, with its own
 * job's context): each change's hooks run in order, the changes side by side, so reads the hooks
 * make for each one are shared (db/coalesce.ts).
 */
export async function emitStateChangedMany(changes: ReadonlyArray<{ ctx: JobContext; event: StateChangedEvent }>): Promise<void> {
  await Promise.all(changes.map((c) => emitStateChanged(c.ctx, c.event)));
}
