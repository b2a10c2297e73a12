import type { Transaction } from 'kysely';
import { applySignal, applySignals, type SignalCause, type SignalInput, type SignalOutcome } from '../db/repositories/users.js';
import type { Database } from '../db/schema.js';
import type { KycSignal } from '../domain/state-machine.js';
import { emitStateChanged, emitStateChangedMany } from './hooks.js';
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

/** One customer's signal in a batch, with the job it comes from (whose context runs its hooks). */
export interface BatchSignal extends SignalInput {
  ctx: JobContext;
}

/** Applies many signals (each customer at most once) with a fixed number of statements. */
export type ApplySignals = (trx: Trx, items: BatchSignal[]) => Promise<SignalOutcome[]>;

/**
 * changeState for a batch of jobs (a worker applying the deliveries it took together): `work`
 * runs in one commit and applies signals through `apply`; once the commit is durable each change
 * emits the state-changed hooks with its own job's context. A commit that failed emits nothing.
 */
export async function changeStates<T>(work: (trx: Trx, apply: ApplySignals) => Promise<T>, commit: Commit): Promise<T> {
  const changed: Array<{ ctx: JobContext; event: StateChangedEvent }> = [];
  const apply: ApplySignals = async (trx, items) => {
    const outcomes = await applySignals(
      trx,
      items.map(({ ctx: _ctx, ...i }) => i),
    );
    outcomes.forEach((o, k) => {
      const { ctx, userId, cause } = items[k]!;
      if (o.changed)
        changed.push({ ctx, event: { userId, from: o.from, to: o.to, cause: cause.id ? `${cause.type}:${cause.id}` : cause.type } });
    });
    return outcomes;
  };
  const result = await commit((trx) => work(trx, apply));
  await emitStateChangedMany(changed);
  return result;
}
