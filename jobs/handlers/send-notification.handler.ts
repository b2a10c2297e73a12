import { UnrecoverableError } from 'bullmq';
import { claim, reopen, settle } from '../../db/repositories/idempotency.js';
import { linksForUser } from '../../db/repositories/links.js';
import {
  beginAttempt,
  cancelMessage,
  getMessage,
  getProgramme,
  markFailed,
  markSent,
  peekClaim,
  recordTransientError,
  setSubject,
  stopProgramme,
} from '../../db/repositories/notifications.js';
import { findUserById } from '../../db/repositories/users.js';
import { nowIso } from '../../lib/time.js';
import { sendNotification } from '../definitions/send-notification.js';
import { ChannelError } from '../notifications/channel.js';
import { channelsFor } from '../notifications/transports.js';
import { markProgrammeReinvited, PROGRESSED, type NotifyDeps } from '../notifications/programme.js';
import { render, TemplateError } from '../notifications/templates.js';
import { defineHandler } from '../types.js';

/**
 * Sends one ledger row. Safe to run twice: the row must still be `queued`, and the send is
 * claimed (idempotency key notify-send:<id>) before it is attempted, so a retried or duplicated
 * job never sends the same message twice. Temporary failures (SMTP down, 4xx) retry with
 * backoff; a permanent one (bad address, refused recipient) or the last attempt records the
 * reason on the row — the job fails, the process never does.
 */

/** An unsettled claim younger than this belongs to an attempt still running (another worker). */
export const SEND_LEASE_MS = 2 * 60_000;

export type SendOutcome =
  { sent: true; providerMessageId: string | null } | { skipped: string } | { cancelled: string } | { failed: string };

export async function deliver(deps: NotifyDeps, id: string, attempt: { number: number; final: boolean }): Promise<SendOutcome> {
  const { db } = deps;
  const row = await getMessage(db, id);
  if (!row) return { skipped: 'missing' };
  if (row.status !== 'queued') return { skipped: row.status };
  if (!row.linkUrl) return { skipped: 'waiting for its link' };

  const user = await findUserById(db, row.userId);
  if (!user) {
    await markFailed(db, id, 'customer not found');
    return { failed: 'customer not found' };
  }
  // Checked again right before sending: the customer may have moved on since it was queued.
  if (row.programmeId) {
    const p = await getProgramme(db, row.programmeId);
    if (p && p.status === 'stopped') {
      const why = `programme stopped: ${p.stopReason ?? 'stopped'}`;
      await cancelMessage(db, id, why);
      return { cancelled: why };
    }
  }
  if (PROGRESSED.includes(user.kycState)) {
    // A link or a reminder is pointless once the customer has started or finished KYC.
    const why = `customer is already ${user.kycState}`;
    await cancelMessage(db, id, why);
    return { cancelled: why };
  }
  if (row.linkId) {
    const link = (await linksForUser(db, row.userId)).find((l) => l.id === row.linkId);
    if (link && link.status !== 'active') {
      const why = `its link was ${link.status} by a newer one`;
      await cancelMessage(db, id, why);
      return { cancelled: why };
    }
  }

  const channel = channelsFor(deps.env).get(row.channel);
  const addressProblem = channel ? channel.checkAddress(row.address) : `no channel ${row.channel}`;
  if (addressProblem || !channel) {
    await markFailed(db, id, addressProblem ?? 'no channel');
    await stopAfterFailure(deps, row.programmeId, addressProblem ?? 'no channel');
    return { failed: addressProblem ?? 'no channel' };
  }

  let rendered;
  try {
    rendered = render(row.kind, row.locale, { name: user.alias, linkUrl: row.linkUrl });
  } catch (err) {
    const why = err instanceof TemplateError ? err.message : `could not render: ${(err as Error).message}`;
    await markFailed(db, id, why);
    return { failed: why };
  }

  const key = `notify-send:${id}`;
  const c = await claim(db, key, 'notify-send');
  if (!c.fresh) {
    if (c.status === 'done') {
      // Sent by an earlier attempt that stopped before recording it: record, never resend.
      const r = c.result as { providerMessageId?: string | null } | null;
      await markSent(db, id, { subject: rendered.subject, providerMessageId: r?.providerMessageId ?? null });
      return { sent: true, providerMessageId: r?.providerMessageId ?? null };
    }
    if (c.status === 'started') {
      const touched = (await peekClaim(db, key))?.updatedAt;
      if (touched && Date.now() - Date.parse(touched) < SEND_LEASE_MS) {
        // Another worker is sending it right now; look again later (it will be sent or settled).
        throw new Error('another attempt of this message is in progress');
      }
      // An attempt died mid-send: the message may or may not have left. Never guess into a
      // duplicate — record it and let an operator resend by hand if the customer did not get it.
      const why = 'an earlier attempt was interrupted while sending; delivery unknown — resend by hand if the customer did not receive it';
      await markFailed(db, id, why);
      return { failed: why };
    }
    // `failed` = a previous attempt was refused: known not delivered, so try again.
    await reopen(db, key);
  }
  if (!(await beginAttempt(db, id))) {
    await settle(db, key, 'failed', { reason: 'row settled meanwhile' });
    return { skipped: 'settled meanwhile' };
  }
  await setSubject(db, id, rendered.subject);

  try {
    const receipt = await channel.send({
      id,
      to: row.address,
      rendered,
      locale: row.locale,
      tags: {
        'X-KYC-Desk-Notification': id,
        'X-KYC-Desk-Kind': row.kind,
        ...(row.programmeId ? { 'X-KYC-Desk-Programme': row.programmeId } : {}),
      },
    });
    const sentAt = nowIso();
    await db.transaction().execute(async (trx) => {
      await settle(trx, key, 'done', { providerMessageId: receipt.providerMessageId });
      await markSent(trx, id, { subject: rendered.subject, providerMessageId: receipt.providerMessageId });
    });
    await markProgrammeReinvited(deps, row, sentAt);
    return { sent: true, providerMessageId: receipt.providerMessageId };
  } catch (err) {
    const ce = err instanceof ChannelError ? err : new ChannelError((err as Error).message ?? String(err), false);
    await settle(db, key, 'failed', { error: ce.message, code: ce.code });
    if (ce.permanent || attempt.final) {
      const why = ce.permanent ? ce.message : `gave up after ${attempt.number} attempt(s): ${ce.message}`;
      await markFailed(db, id, why);
      await stopAfterFailure(deps, row.programmeId, why);
      return { failed: why };
    }
    await recordTransientError(db, id, `attempt ${attempt.number}: ${ce.message}`);
    throw ce;
  }
}

async function stopAfterFailure(deps: NotifyDeps, programmeId: string | null, why: string): Promise<void> {
  if (!programmeId) return;
  // Follow-ups to an address that cannot receive mail would only fail again.
  await deps.db.transaction().execute((trx) => stopProgramme(trx, programmeId, `message not delivered: ${why}`.slice(0, 500), null));
}

export default defineHandler(sendNotification, {
  handler: async ({ notificationId }, ctx) => {
    const row = await getMessage(ctx.db, notificationId);
    if (row) ctx.setUser(row.userId);
    const number = ctx.job.attemptsMade + 1;
    const outcome = await deliver(ctx, notificationId, { number, final: number >= (ctx.job.opts.attempts ?? 1) });
    // A recorded permanent failure ends the job as failed (visible in the queue views) without a retry.
    if ('failed' in outcome) throw new UnrecoverableError(outcome.failed);
    return outcome;
  },
});
