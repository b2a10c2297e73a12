import { UnrecoverableError } from 'bullmq';
import { linksForUser } from '../../db/repositories/links.js';
import { cancelMessage, getMessage, getProgramme, markFailed, stopProgramme } from '../../db/repositories/notifications.js';
import { findUserById } from '../../db/repositories/users.js';
import { isAlertKind, type Notification } from '../../db/schema.js';
import { deliverAlertMessage } from '../alerts/deliver.js';
import { sendNotification } from '../definitions/send-notification.js';
import { channelsFor } from '../notifications/transports.js';
import { markProgrammeReinvited, PROGRESSED, type NotifyDeps } from '../notifications/programme.js';
import { sendClaimed, type SendAttempt, type SendOutcome } from '../notifications/send.js';
import { render, TemplateError } from '../notifications/templates.js';
import { defineHandler } from '../types.js';

/**
 * Sends one ledger row. Safe to run twice: the row must still be `queued`, and the send is
 * claimed before it is attempted (jobs/notifications/send.ts), so a retried or duplicated job
 * never sends the same message twice. Temporary failures (SMTP down, 4xx) retry with backoff; a
 * permanent one (bad address, refused recipient) or the last attempt records the reason on the
 * row — the job fails, the process never does. Messages about an alert go to operators and
 * webhooks (jobs/alerts/deliver.ts); the rest to customers.
 */

export async function deliver(
  deps: NotifyDeps,
  id: string,
  attempt: SendAttempt,
  read: Promise<Notification | undefined> = getMessage(deps.db, id),
): Promise<SendOutcome> {
  const { db } = deps;
  const row = await read;
  if (!row) return { skipped: 'missing' };
  if (row.status !== 'queued') return { skipped: row.status };
  if (isAlertKind(row.kind)) return deliverAlertMessage(deps, { ...row, kind: row.kind }, attempt);
  if (!row.linkUrl) return { skipped: 'waiting for its link' };

  const user = row.userId ? await findUserById(db, row.userId) : undefined;
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
    const link = (await linksForUser(db, user.id)).find((l) => l.id === row.linkId);
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

  return sendClaimed(
    db,
    row,
    attempt,
    {
      subject: rendered.subject,
      deliver: () =>
        channel.send({
          id,
          to: row.address,
          rendered,
          locale: row.locale,
          tags: {
            'X-KYC-Desk-Notification': id,
            'X-KYC-Desk-Kind': row.kind,
            ...(row.programmeId ? { 'X-KYC-Desk-Programme': row.programmeId } : {}),
          },
        }),
    },
    {
      onSent: (sentAt) => markProgrammeReinvited(deps, row, sentAt),
      onFailed: (why) => stopAfterFailure(deps, row.programmeId, why),
    },
  );
}

async function stopAfterFailure(deps: NotifyDeps, programmeId: string | null, why: string): Promise<void> {
  if (!programmeId) return;
  // Follow-ups to an address that cannot receive mail would only fail again.
  await deps.db.transaction().execute((trx) => stopProgramme(trx, programmeId, `message not delivered: ${why}`.slice(0, 500), null));
}

export default defineHandler(sendNotification, {
  handler: async ({ notificationId }, ctx) => {
    const read = getMessage(ctx.db, notificationId);
    const row = await read;
    if (row?.userId) ctx.setUser(row.userId);
    const number = ctx.job.attemptsMade + 1;
    const outcome = await deliver(ctx, notificationId, { number, final: number >= (ctx.job.opts.attempts ?? 1) }, read);
    // A recorded permanent failure ends the job as failed (visible in the queue views) without a retry.
    if ('failed' in outcome) throw new UnrecoverableError(outcome.failed);
    return outcome;
  },
});
