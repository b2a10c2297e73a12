import { createHash } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { CapaError, describeCapaError } from '../../capa/client.js';
import { insertDetailsSnapshot } from '../../db/repositories/details.js';
import { resolveConflictChecks } from '../../db/repositories/inbox.js';
import { lastReinvitation } from '../../db/repositories/links.js';
import { clearUnmappedResult, findUserById, markUnmappedResult, pollAnswerSuperseded } from '../../db/repositories/users.js';
import { mapVerificationResult, predatesReinvitation } from '../../domain/state-machine.js';
import { nowIso } from '../../lib/time.js';
import { fetchDetails } from '../definitions/fetch-details.js';
import { changeState } from '../state-change.js';
import { defineHandler } from '../types.js';

/**
 * The inbox verdict for deliveries that asked Capa (effect `conflict_check`) when Capa's latest
 * verification predates the customer's re-invitation: no newer attempt exists, so each of them was
 * an earlier link's event (retried late) and was rightly not applied. Other conflict checks keep
 * their effect; the state history shows what the answer changed (cause `conflict:webhook:<id>`).
 */
export const EARLIER_LINK = 'earlier_link';

export default defineHandler(fetchDetails, {
  handler: async ({ userId, cause }, ctx) => {
    const user = await findUserById(ctx.db, userId);
    if (!user) return { skipped: 'missing user' };
    if (!user.capaUserId) return { skipped: 'not in Capa yet' };
    const askedAt = nowIso();
    const details = await ctx.capa.getKycDetails(user.capaUserId).catch((err: unknown) => {
      // A refusal (401 foreign user, 404 unknown user, 400) will not change by asking again;
      // network errors, 5xx and 429 are retried (429 pauses the queue in the worker).
      if (err instanceof CapaError && !err.retryable) throw new UnrecoverableError(describeCapaError(err));
      throw err;
    });
    const raw = details?.aipriseSummary?.verificationResult ?? null;
    const mapped = details ? mapVerificationResult(raw) : null;
    const verificationCreatedAt = typeof details?.createdAt === 'string' ? details.createdAt : null;
    const jobRef = String(ctx.job.id);
    const conflictOf = /^conflict:webhook:(\d+)$/.exec(cause ?? '');
    const result = await changeState(ctx, async (trx, apply) => {
      // Two answers for one customer can be in flight (a conflict check beside a refresh): one
      // recorded after we asked may be newer than ours, which then must not overwrite it.
      if (await pollAnswerSuperseded(trx, userId, user.capaConfirmedAt))
        return { superseded: true as const, state: user.kycState, changed: false, verificationResult: raw, found: Boolean(details) };
      if (details) {
        await insertDetailsSnapshot(
          trx,
          { userId, details, verificationResult: raw, mappedState: mapped?.state ?? null, cause: cause ?? `job:${jobRef}` },
          ctx.dataKeys,
        );
      }
      if (mapped && !mapped.known) {
        // Never guess an unknown value into a state: keep it raw and flag it for a human.
        await markUnmappedResult(trx, userId, mapped.raw);
        return { state: user.kycState, unmapped: mapped.raw };
      }
      await clearUnmappedResult(trx, userId);
      // Read under the customer's lock (pollAnswerSuperseded took it): a link issued meanwhile waits.
      const reinvitation = (await lastReinvitation(trx, userId)) ?? null;
      const beforeReinvitation = Boolean(details && reinvitation && predatesReinvitation(verificationCreatedAt, reinvitation) === true);
      const o = await apply(
        trx,
        userId,
        { kind: 'POLLED', state: mapped?.state ?? null, verificationCreatedAt, reinvitation },
        { type: 'poll', id: jobRef, reason: cause ?? 'details fetched' },
      );
      // (An earlier verification Capa revised to another outcome does move the customer: then the
      // deliveries keep conflict_check and the history shows the change.)
      const earlier =
        beforeReinvitation && !o.changed
          ? await resolveConflictChecks(trx, userId, { askedAt, inboxId: conflictOf ? Number(conflictOf[1]) : null, effect: EARLIER_LINK })
          : 0;
      return {
        state: o.to,
        from: o.from,
        changed: o.changed,
        drift: o.drift,
        verificationResult: raw,
        found: Boolean(details),
        ...(beforeReinvitation ? { beforeReinvitation: true } : {}),
        ...(earlier ? { earlierLinkEvents: earlier } : {}),
      };
    });
    if ('superseded' in result) {
      // Ask again rather than guess which answer is the newer one (a deterministic id: a retry
      // of this job queues the same question once).
      const requestId = `recheck-${createHash('sha256').update(jobRef).digest('hex').slice(0, 16)}`;
      await ctx.enqueue.add(fetchDetails, { userId, cause: cause ?? 'details fetched', requestId });
      return { ...result, recheck: requestId };
    }
    return result;
  },
});
