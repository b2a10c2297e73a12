import type { Transaction } from 'kysely';
import { applySignal, type SignalCause, type SignalOutcome } from '../db/repositories/users.js';
import type { Database } from '../db/schema.js';
import type { KycSignal } from '../domain/state-machine.js';
import { emitStateChanged } from './hooks.js';
import type { JobContext, StateChangedEvent } from './types.js';

type Trx = Transaction<Database>;

/** Applies one signal to one customer inside the commit (db applySignal: state machine, history, drift). */
export type ApplySignal = (trx: Trx, userId: string, signal: KycSignal, cause: SignalCause) => Promise<SignalOutcome>;

/** Runs work in one commit: a transaction of its own by default, or the worker's group commit. */
export type Commit = <T>(work: (trx: Trx) => Promise<T>) => Promise<T>;

/**
 * The one way a job changes a customer's state. `work` runs in one commit with whatever else must
 * be written with the change (a delivery's outcome, a link, a details snapshot) and applies
 * signals through `apply`. Once that commit is durable, every change that moved a customer emits
 * the state-changed hooks (jobs/hooks.ts), in order; a commit that failed emits nothing.
 */
export async function changeState<T>(ctx: JobContext, work: (trx: Trx, apply: ApplySignal) => Promise<T>, commit?: Commit): Promise<T> {
  const changed: StateChangedEvent[] = [];
  const apply: ApplySignal = async (trx, userId, signal, cause) => {
    const o = await applySignal(trx, userId, signal, cause);
    if (o.changed) changed.push({ userId, from: o.from, to: o.to, cause: cause.id ? `${cause.type}:${cause.id}` : cause.type });
    return o;
  };
  const run: Commit = commit ?? ((w) => ctx.db.transaction().execute(w));
  const result = await run((trx) => work(trx, apply));
  for (const e of changed) await emitStateChanged(ctx, e);
  return result;
}
