import { claim, reopen, settle } from '../../db/repositories/idempotency.js';
import { groupCommit } from '../../db/group-commit.js';
import { beginAttempt, markFailed, markSent, peekClaim, recordTransientError } from '../../db/repositories/notifications.js';
import type { Db } from '../../db/client.js';
import type { Notification } from '../../db/schema.js';
import { ChannelError, type DeliveryReceipt } from './channel.js';

/**
 * The one way a ledger row is sent, whatever it carries (a customer's e-mail, an alert's e-mail
 * or webhook): the send is claimed (idempotency key notify-send:<id>) before it is attempted, so a
 * retried or duplicated job — or the web process delivering while no worker runs — never sends
 * the same message twice. Temporary failures are recorded on the row and thrown (the job retries
 * with backoff); a permanent one, or the last attempt, records the reason and returns `failed`.
 */

/** An unsettled claim younger than this belongs to an attempt still running (another worker). */
export const SEND_LEASE_MS = 2 * 60_000;

export type SendOutcome =
  { sent: true; providerMessageId: string | null } | { skipped: string } | { cancelled: string } | { failed: string };

export interface SendAttempt {
  number: number;
  final: boolean;
}

export async function sendClaimed(
  db: Db,
  row: Pick<Notification, 'id'>,
  attempt: SendAttempt,
  send: { subject: string | null; deliver: () => Promise<DeliveryReceipt> },
  hooks: { onSent?: (sentAt: string) => Promise<void>; onFailed?: (why: string) => Promise<void> } = {},
): Promise<SendOutcome> {
  const id = row.id;
  const key = `notify-send:${id}`;
  // The claim, the attempt and the subject in one commit, shared with the sends starting now and
  // synced to disk before anything leaves: a power cut cannot forget that this message went out.
  const started = await groupCommit(db, 'durable').run(async (trx) => {
    const c = await claim(trx, key, 'notify-send');
    if (!c.fresh) return c;
    if (await beginAttempt(trx, id, send.subject)) return 'claimed' as const;
    await settle(trx, key, 'failed', { reason: 'row settled meanwhile' });
    return 'settled meanwhile' as const;
  });
  if (started === 'settled meanwhile') return { skipped: started };
  if (started !== 'claimed') {
    const c = started;
    if (c.status === 'done') {
      // Sent by an earlier attempt that stopped before recording it: record, never resend.
      const r = c.result as { providerMessageId?: string | null } | null;
      await markSent(db, id, { subject: send.subject, providerMessageId: r?.providerMessageId ?? null });
      return { sent: true, providerMessageId: r?.providerMessageId ?? null };
    }
    if (c.status === 'started') {
      const touched = (await peekClaim(db, key))?.updatedAt;
      if (touched && Date.now() - Date.parse(touched) < SEND_LEASE_MS) {
        // Another worker is sending it right now; look again later (it will be sent or settled).
        throw new Error('another attempt of this message is in progress');
      }
      // An attempt died mid-send: the message may or may not have left. Never guess into a
      // duplicate — record it and let an operator resend by hand if it did not arrive.
      const why = 'an earlier attempt was interrupted while sending; delivery unknown — resend by hand if the customer did not receive it';
      await markFailed(db, id, why);
      return { failed: why };
    }
    // `failed` = a previous attempt was refused: known not delivered, so try again.
    const again = await groupCommit(db, 'durable').run(async (trx) => {
      await reopen(trx, key);
      if (await beginAttempt(trx, id, send.subject)) return true;
      await settle(trx, key, 'failed', { reason: 'row settled meanwhile' });
      return false;
    });
    if (!again) return { skipped: 'settled meanwhile' };
  }

  try {
    const receipt = await send.deliver();
    const sentAt = new Date().toISOString();
    // Shared with the others recorded now, and on disk with the next claim's commit at the latest
    // (syncing the log syncs everything written before). A power cut in between can only turn a
    // sent message into "interrupted, delivery unknown", never send it twice.
    await groupCommit(db).run(async (trx) => {
      await settle(trx, key, 'done', { providerMessageId: receipt.providerMessageId });
      await markSent(trx, id, { subject: send.subject, providerMessageId: receipt.providerMessageId });
    });
    await hooks.onSent?.(sentAt);
    return { sent: true, providerMessageId: receipt.providerMessageId };
  } catch (err) {
    const ce = err instanceof ChannelError ? err : new ChannelError((err as Error).message ?? String(err), false);
    await settle(db, key, 'failed', { error: ce.message, code: ce.code });
    if (ce.permanent || attempt.final) {
      const why = ce.permanent ? ce.message : `gave up after ${attempt.number} attempt(s): ${ce.message}`;
      await markFailed(db, id, why);
      await hooks.onFailed?.(why);
      return { failed: why };
    }
    await recordTransientError(db, id, `attempt ${attempt.number}: ${ce.message}`);
    throw ce;
  }
}
