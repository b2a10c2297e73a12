import { kindOf, type Db } from '../../db/client.js';
import { groupCommit } from '../../db/group-commit.js';
import { deliveriesToProcess, settleDeliveries, settleDelivery, type DeliveryOutcome } from '../../db/repositories/inbox.js';
import type { SignalOutcome } from '../../db/repositories/users.js';
import { KYC_EVENT_NAMES, type KycEventName } from '../../domain/webhook-events.js';
import { Batcher, type Settled } from '../../lib/batch.js';
import { fetchDetails } from '../definitions/fetch-details.js';
import { processWebhook } from '../definitions/process-webhook.js';
import { changeStates } from '../state-change.js';
import { defineHandler, type JobContext } from '../types.js';

type Result = Record<string, unknown>;
interface Item {
  inboxId: number;
  ctx: JobContext;
}

/**
 * Deliveries the worker is processing at the same moment are read, applied and settled together
 * (jobs/state-change.ts changeStates): a fixed number of statements per batch instead of about
 * eleven round trips per delivery on PostgreSQL, and one shared commit on SQLite. Each job still
 * gets its own outcome; a batch that fails is applied again one delivery at a time, so an error
 * belongs to the delivery that caused it.
 */
const batchers = new WeakMap<Db, Batcher<Item, Result>>();
function batcherFor(db: Db, waitMs: number): Batcher<Item, Result> {
  let b = batchers.get(db);
  // A batch that is not full waits WEBHOOK_BATCH_WAIT_MS for company: with the intake on the same
  // machine (and, on SQLite, the same write lock), a few bigger transactions cost the worker less
  // CPU per delivery and keep the intake waiting less often than many small ones.
  // PostgreSQL runs transactions side by side (rows locked in id order, so two batches never wait
  // on each other in a cycle): while one batch waits on a round trip, others use the time.
  if (!b) batchers.set(db, (b = new Batcher(processDeliveries, 64, waitMs, kindOf(db) === 'postgres' ? 3 : 1)));
  return b;
}

export default defineHandler(processWebhook, {
  onFinalFailure: async ({ inboxId }, error, ctx) => {
    await settleDelivery(ctx.db, inboxId, { status: 'failed', error, attempts: ctx.job.attemptsMade + 1 });
  },
  handler: ({ inboxId }, ctx) => batcherFor(ctx.db, ctx.env.WEBHOOK_BATCH_WAIT_MS).run({ inboxId, ctx }),
});

interface Settle {
  k: number;
  id: number;
  outcome: DeliveryOutcome;
  result: Result;
}
interface Apply {
  k: number;
  item: Item;
  userId: string;
  event: KycEventName;
  attempts: number;
}

async function processDeliveries(items: Item[]): Promise<Array<Settled<Result>>> {
  const db = items[0]!.ctx.db;
  const rows = await deliveriesToProcess(db, [...new Set(items.map((i) => i.inboxId))]);
  const out: Array<Settled<Result>> = new Array(items.length);
  const settles: Settle[] = [];
  const applies: Apply[] = [];
  items.forEach((item, k) => {
    const d = rows.get(item.inboxId);
    if (!d) return void (out[k] = { ok: true, value: { skipped: 'missing' } });
    if (d.status !== 'received') return void (out[k] = { ok: true, value: { skipped: d.status } });
    const attempts = item.ctx.job.attemptsMade + 1;
    const event = d.eventName as KycEventName;
    if (d.eventType !== 'KYC' || !KYC_EVENT_NAMES.includes(event)) {
      settles.push({ k, id: item.inboxId, outcome: { status: 'ignored', effect: 'not_kyc', attempts }, result: { ignored: true } });
    } else if (!d.customerId) {
      // A customer created outside KYC Desk (or a foreign id): nothing to change; kept for the inbox.
      settles.push({
        k,
        id: item.inboxId,
        outcome: {
          status: 'ignored',
          effect: 'unknown_user',
          attempts,
          error: `no customer with externalUserId ${d.externalUserId ?? '(none)'}`,
        },
        result: { ignored: 'unknown_user' },
      });
    } else {
      item.ctx.setUser(d.customerId);
      applies.push({ k, item, userId: d.customerId, event, attempts });
    }
  });

  // A customer's second delivery in the batch must see the first one's outcome: later rounds.
  const rounds: Apply[][] = [];
  const seen = new Map<string, number>();
  for (const a of applies) {
    const r = seen.get(a.userId) ?? 0;
    seen.set(a.userId, r + 1);
    (rounds[r] ??= []).push(a);
  }
  if (rounds.length === 0 && settles.length) rounds.push([]);
  for (let r = 0; r < rounds.length; r++) {
    const round = rounds[r]!;
    const alsoSettle = r === 0 ? settles : [];
    try {
      await commitRound(db, round, alsoSettle, out);
    } catch (error) {
      if (round.length + alsoSettle.length === 1) {
        for (const x of [...round, ...alsoSettle]) out[x.k] = { ok: false, error };
        continue;
      }
      // One delivery's error must not fail the others: each on its own.
      for (const s of alsoSettle) {
        try {
          await commitRound(db, [], [s], out);
        } catch (e) {
          out[s.k] = { ok: false, error: e };
        }
      }
      for (const a of round) {
        try {
          await commitRound(db, [a], [], out);
        } catch (e) {
          out[a.k] = { ok: false, error: e };
        }
      }
    }
  }
  return out;
}

/** One commit: the settled-only deliveries, then the signals and their deliveries' outcomes. */
async function commitRound(db: Db, round: Apply[], settles: Settle[], out: Array<Settled<Result>>): Promise<void> {
  const outcomes = await changeStates(
    async (trx, apply) => {
      await settleDeliveries(
        trx,
        settles.map((s) => ({ id: s.id, outcome: s.outcome })),
      );
      const os = await apply(
        trx,
        round.map((a) => ({
          ctx: a.item.ctx,
          userId: a.userId,
          signal: { kind: 'WEBHOOK', event: a.event },
          cause: { type: 'webhook', id: String(a.item.inboxId), reason: a.event },
        })),
      );
      await settleDeliveries(
        trx,
        round.map((a, j) => ({
          id: a.item.inboxId,
          outcome: {
            status: 'processed',
            userId: a.userId,
            stateFrom: os[j]!.from,
            stateTo: os[j]!.to,
            effect: os[j]!.decision.effect,
            attempts: a.attempts,
          },
        })),
      );
      return os;
    },
    // On SQLite this also shares a COMMIT with other work committing now (db/group-commit.ts).
    (work) => groupCommit(db).run(work),
  );
  for (const s of settles) out[s.k] = { ok: true, value: s.result };
  for (let j = 0; j < round.length; j++) {
    const a = round[j]!;
    try {
      out[a.k] = { ok: true, value: await followUp(a, outcomes[j]!) };
    } catch (error) {
      out[a.k] = { ok: false, error };
    }
  }
}

async function followUp(a: Apply, outcome: SignalOutcome): Promise<Result> {
  const { inboxId, ctx } = a.item;
  // Final outcomes carry no reason in the webhook, and a conflict must be settled by Capa:
  // both ask Get KYC Details. A conflict gets a question of its own: the customer's fetch in
  // flight may have asked before this delivery arrived (a re-invited customer's genuine event
  // would then wait for the next refresh). The answer records its verdict on this row.
  if (outcome.decision.effect === 'conflict_check') {
    await ctx.enqueue.add(fetchDetails, { userId: a.userId, cause: `conflict:webhook:${inboxId}`, requestId: `wh-${inboxId}` });
  } else if (outcome.changed && a.event !== 'CREATED_KYC') {
    await ctx.enqueue.add(fetchDetails, { userId: a.userId, cause: `webhook:${inboxId}` });
  }
  const because = 'because' in outcome.decision ? outcome.decision.because : undefined;
  return { from: outcome.from, to: outcome.to, effect: outcome.decision.effect, ...(because ? { because } : {}) };
}
