import { groupCommit } from '../../db/group-commit.js';
import { getDelivery, settleDelivery } from '../../db/repositories/inbox.js';
import { findUserByExternalId } from '../../db/repositories/users.js';
import { KYC_EVENT_NAMES, type KycEventName } from '../../domain/webhook-events.js';
import { fetchDetails } from '../definitions/fetch-details.js';
import { processWebhook } from '../definitions/process-webhook.js';
import { changeState } from '../state-change.js';
import { defineHandler } from '../types.js';

export default defineHandler(processWebhook, {
  onFinalFailure: async ({ inboxId }, error, ctx) => {
    await settleDelivery(ctx.db, inboxId, { status: 'failed', error, attempts: ctx.job.attemptsMade + 1 });
  },
  handler: async ({ inboxId }, ctx) => {
    const d = await getDelivery(ctx.db, inboxId);
    if (!d) return { skipped: 'missing' };
    if (d.status !== 'received') return { skipped: d.status };
    const attempts = ctx.job.attemptsMade + 1;

    const event = d.eventName as KycEventName;
    if (d.eventType !== 'KYC' || !KYC_EVENT_NAMES.includes(event)) {
      await settleDelivery(ctx.db, inboxId, { status: 'ignored', effect: 'not_kyc', attempts });
      return { ignored: true };
    }
    const user = d.externalUserId ? await findUserByExternalId(ctx.db, d.externalUserId) : undefined;
    if (!user) {
      // A customer created outside KYC Desk (or a foreign id): nothing to change; kept for the inbox.
      await settleDelivery(ctx.db, inboxId, {
        status: 'ignored',
        effect: 'unknown_user',
        attempts,
        error: `no customer with externalUserId ${d.externalUserId ?? '(none)'}`,
      });
      return { ignored: 'unknown_user' };
    }
    ctx.setUser(user.id);
    const outcome = await changeState(
      ctx,
      async (trx, apply) => {
        const o = await apply(trx, user.id, { kind: 'WEBHOOK', event }, { type: 'webhook', id: String(inboxId), reason: event });
        await settleDelivery(trx, inboxId, {
          status: 'processed',
          userId: user.id,
          stateFrom: o.from,
          stateTo: o.to,
          effect: o.decision.effect,
          attempts,
        });
        return o;
      },
      // Shares a COMMIT with the other deliveries being processed now (db/group-commit.ts).
      (work) => groupCommit(ctx.db).run(work),
    );
    // Final outcomes carry no reason in the webhook, and a conflict must be settled by Capa:
    // both ask Get KYC Details. A conflict gets a question of its own: the customer's fetch in
    // flight may have asked before this delivery arrived (a re-invited customer's genuine event
    // would then wait for the next refresh). The answer records its verdict on this row.
    if (outcome.decision.effect === 'conflict_check') {
      await ctx.enqueue.add(fetchDetails, { userId: user.id, cause: `conflict:webhook:${inboxId}`, requestId: `wh-${inboxId}` });
    } else if (outcome.changed && event !== 'CREATED_KYC') {
      await ctx.enqueue.add(fetchDetails, { userId: user.id, cause: `webhook:${inboxId}` });
    }
    const because = 'because' in outcome.decision ? outcome.decision.because : undefined;
    return { from: outcome.from, to: outcome.to, effect: outcome.decision.effect, ...(because ? { because } : {}) };
  },
});
