import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { CapaError, describeCapaError } from '../../capa/client.js';
import { insertDetailsSnapshot } from '../../db/repositories/details.js';
import { activeLink } from '../../db/repositories/links.js';
import { applySignal, findUserById } from '../../db/repositories/users.js';
import { mapVerificationResult } from '../state-machine.js';
import { defineJob } from '../types.js';
import { afterStateChanged } from '../hooks.js';

/** Reads Get KYC Details and applies Capa's truth (drift is recorded by applySignal). */
export const fetchDetails = defineJob({
  name: 'fetch-details',
  queue: 'capa',
  schema: z.object({ userId: z.string().min(1), cause: z.string().max(200).optional(), requestId: z.string().max(100).optional() }),
  // One in flight per customer; an operator's explicit request gets its own id.
  jobId: (p) => (p.requestId ? `details-${p.userId}-${p.requestId}` : `details-${p.userId}`),
  userOf: (p) => p.userId,
  options: { attempts: 6, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { age: 7 * 86400 } },
  handler: async ({ userId, cause }, ctx) => {
    const user = await findUserById(ctx.db, userId);
    if (!user) return { skipped: 'missing user' };
    if (!user.capaUserId) return { skipped: 'not in Capa yet' };
    const details = await ctx.capa.getKycDetails(user.capaUserId).catch((err: unknown) => {
      // A refusal (401 foreign user, 404 unknown user, 400) will not change by asking again;
      // network errors, 5xx and 429 are retried (429 pauses the queue in the worker).
      if (err instanceof CapaError && !err.retryable) throw new UnrecoverableError(describeCapaError(err));
      throw err;
    });
    const raw = details?.aipriseSummary?.verificationResult ?? null;
    const mapped = details ? mapVerificationResult(raw) : null;
    // The verification's own timestamp against our newest link: older means the previous attempt.
    const link = details ? await activeLink(ctx.db, userId) : undefined;
    const verifiedAt = typeof details?.createdAt === 'string' ? Date.parse(details.createdAt) : NaN;
    const beforeCurrentLink = Boolean(link) && Number.isFinite(verifiedAt) && verifiedAt < Date.parse(link!.createdAt);
    const jobRef = String(ctx.job.id);
    const result = await ctx.db.transaction().execute(async (trx) => {
      if (details) {
        await insertDetailsSnapshot(trx, { userId, details, verificationResult: raw, mappedState: mapped?.state ?? null, cause: cause ?? `job:${jobRef}` }, ctx.dataKeys);
      }
      if (mapped && !mapped.known) {
        // Never guess an unknown value into a state: keep it raw and flag it for a human.
        await trx.updateTable('users').set({ unmappedResult: mapped.raw, capaConfirmedAt: new Date().toISOString() }).where('id', '=', userId).execute();
        return { state: user.kycState, unmapped: mapped.raw };
      }
      await trx.updateTable('users').set({ unmappedResult: null }).where('id', '=', userId).execute();
      const o = await applySignal(trx, userId, { kind: 'POLLED', state: mapped?.state ?? null, beforeCurrentLink }, { type: 'poll', id: jobRef, reason: cause ?? 'details fetched' });
      return { state: o.to, from: o.from, changed: o.changed, drift: o.drift, verificationResult: raw, found: Boolean(details) };
    });
    if ('changed' in result && result.changed) await afterStateChanged(ctx, { userId, from: result.from, to: result.state, cause: `poll:${jobRef}` });
    return result;
  },
});
