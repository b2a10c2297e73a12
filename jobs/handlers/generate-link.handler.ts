import { UnrecoverableError } from 'bullmq';
import type { z } from 'zod';
import { CapaError, describeCapaError } from '../../capa/client.js';
import { claim, settle } from '../../db/repositories/idempotency.js';
import { activeLink, insertLink } from '../../db/repositories/links.js';
import { findUserById } from '../../db/repositories/users.js';
import { generateLink } from '../definitions/generate-link.js';
import { emitLinkIssued } from '../hooks.js';
import { changeState } from '../state-change.js';
import { defineHandler, type JobContext } from '../types.js';

/** Asks Capa for a link once per request id and records it (also the link step of an import row). */
export async function issueLink(p: z.infer<typeof generateLink.schema>, ctx: JobContext): Promise<unknown> {
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
      await emitLinkIssued(ctx, { userId: user.id, linkId: done.linkId, notify: true, locale: p.locale ?? null });
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
  const result = await changeState(ctx, async (trx, apply) => {
    const link = await insertLink(trx, {
      userId: user.id,
      url: kycLink,
      country: p.country,
      redirectUri,
      createdBy: p.requestedBy ?? null,
    });
    const o = await apply(
      trx,
      user.id,
      { kind: 'LINK_ISSUED' },
      { type: p.requestedBy ? 'operator' : 'job', id: p.requestedBy ?? String(ctx.job.id), reason: 'link generated' },
    );
    const res = { linkId: link.id, url: kycLink, state: o.to };
    await settle(trx, key, 'done', res);
    return res;
  });
  await emitLinkIssued(ctx, { userId: user.id, linkId: result.linkId, notify: p.notify ?? false, locale: p.locale ?? null });
  return result;
}

export default defineHandler(generateLink, { handler: issueLink });
