import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { CapaError, describeCapaError } from '../../capa/client.js';
import { claim, settle } from '../../db/repositories/idempotency.js';
import { activeLink, insertLink } from '../../db/repositories/links.js';
import { applySignal, findUserById } from '../../db/repositories/users.js';
import { defineJob } from '../types.js';
import { afterLinkIssued } from '../hooks.js';

/**
 * Generates a KYC link (superseding the previous one). Keyed by the operator's request id, so a
 * double click or a retried job asks Capa once and records one link. With `notify` the link is
 * e-mailed (in `locale`, else the customer's country's language) through the link-issued hook.
 */
export const generateLink = defineJob({
  name: 'generate-link',
  queue: 'capa',
  schema: z.object({
    userId: z.string().min(1),
    country: z.enum(['MX', 'DO']),
    redirectUri: z.string().max(2000).nullable().optional(),
    requestId: z.string().min(1).max(100),
    requestedBy: z.string().nullable().optional(),
    notify: z.boolean().optional(),
    /** Language of the e-mail sent with `notify`; unset: from the customer's country. */
    locale: z.enum(['es', 'en']).nullable().optional(),
  }),
  jobId: (p) => `link-${p.requestId}`,
  userOf: (p) => p.userId,
  options: { attempts: 8, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 3600 }, removeOnFail: { age: 7 * 86400 } },
  handler: async (p, ctx) => {
    const user = await findUserById(ctx.db, p.userId);
    if (!user) throw new UnrecoverableError(`user ${p.userId} not found`);
    if (!user.capaUserId) {
      if (user.capaSync === 'failed') throw new UnrecoverableError(`the customer is not in Capa: ${user.capaSyncError ?? 'creation failed'}`);
      throw new Error('the customer is not created in Capa yet; will retry');
    }
    const key = `capa-link:${p.requestId}`;
    const c = await claim(ctx.db, key, 'capa-link');
    if (!c.fresh && c.status === 'done') {
      // A run that stopped between recording the link and its hook would leave the link un-sent.
      // Running the hook again is safe: the ledger keeps one message per link and the send job
      // claims each message once. A link superseded meanwhile is not worth an e-mail any more.
      const done = c.result as { linkId?: string } | null;
      if (p.notify && done?.linkId && (await activeLink(ctx.db, user.id))?.id === done.linkId) {
        await afterLinkIssued(ctx, { userId: user.id, linkId: done.linkId, notify: true, locale: p.locale ?? null });
      }
      return c.result;
    }
    const redirectUri = p.redirectUri ?? `${ctx.env.publicUrl}/kyc/return`;
    let kycLink: string;
    try {
      ({ kycLink } = await ctx.capa.generateKycLink(user.capaUserId, { country: p.country, partnerRedirectUri: redirectUri }));
    } catch (err) {
      if (err instanceof CapaError && !err.retryable) {
        await settle(ctx.db, key, 'failed', { status: err.status, code: err.code });
        throw new UnrecoverableError(describeCapaError(err));
      }
      throw err;
    }
    const result = await ctx.db.transaction().execute(async (trx) => {
      const link = await insertLink(trx, { userId: user.id, url: kycLink, country: p.country, redirectUri, createdBy: p.requestedBy ?? null });
      const o = await applySignal(trx, user.id, { kind: 'LINK_ISSUED' }, { type: p.requestedBy ? 'operator' : 'job', id: p.requestedBy ?? String(ctx.job.id), reason: 'link generated' });
      const res = { linkId: link.id, url: kycLink, state: o.to };
      await settle(trx, key, 'done', res);
      return res;
    });
    await afterLinkIssued(ctx, { userId: user.id, linkId: result.linkId, notify: p.notify ?? false, locale: p.locale ?? null });
    return result;
  },
});
