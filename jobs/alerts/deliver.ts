import type { Db } from '../../db/client.js';
import { getAlert } from '../../db/repositories/alerts.js';
import { markFailed } from '../../db/repositories/notifications.js';
import type { AlertNotificationKind, Notification } from '../../db/schema.js';
import type { Env } from '../../lib/config.js';
import { sendClaimed, type SendAttempt, type SendOutcome } from '../notifications/send.js';
import { channelsFor } from '../notifications/transports.js';
import { webhookTarget } from './config.js';
import { alertWebhookBody, renderAlertEmail, voice } from './messages.js';
import { postAlertWebhook } from './webhook.js';

/**
 * Sends one ledger row about an alert: the e-mail through the same mail path as customers'
 * (channelsFor: SMTP_URL or the sandbox's mailbox), or the signed webhook. Claimed like every
 * send (jobs/notifications/send.ts), so the worker's job and the web process — which delivers
 * alert messages itself while no worker runs — never both send it.
 */
export async function deliverAlertMessage(
  deps: { db: Db; env: Env },
  row: Notification & { kind: AlertNotificationKind },
  attempt: SendAttempt,
): Promise<SendOutcome> {
  const { db, env } = deps;
  const alert = row.alertId ? await getAlert(db, row.alertId) : undefined;
  if (!alert) {
    await markFailed(db, row.id, 'the alert this message is about no longer exists');
    return { failed: 'alert not found' };
  }
  const v = voice(row.locale, env.DEFAULT_TIME_ZONE);

  if (row.channel === 'webhook') {
    const target = webhookTarget(env);
    if (!target) {
      const why = 'no alert webhook is configured any more (ALERTS_WEBHOOK_URL)';
      await markFailed(db, row.id, why);
      return { failed: why };
    }
    const { body, title } = alertWebhookBody(row.kind, alert, row.id, target.format, v, env.publicUrl, new Date().toISOString());
    return sendClaimed(db, row, attempt, {
      subject: title,
      deliver: () => postAlertWebhook(target, body, { deliveryId: row.id, event: row.kind }),
    });
  }

  const channel = channelsFor(env).get(row.channel);
  const problem = channel ? channel.checkAddress(row.address) : `no channel ${row.channel}`;
  if (problem || !channel) {
    await markFailed(db, row.id, problem ?? 'no channel');
    return { failed: problem ?? 'no channel' };
  }
  const rendered = renderAlertEmail(row.kind, alert, v, env.publicUrl);
  return sendClaimed(db, row, attempt, {
    subject: rendered.subject,
    deliver: () =>
      channel.send({
        id: row.id,
        to: row.address,
        rendered,
        locale: row.locale,
        tags: {
          'X-KYC-Desk-Notification': row.id,
          'X-KYC-Desk-Kind': row.kind,
          'X-KYC-Desk-Alert': alert.id,
          'X-KYC-Desk-Rule': alert.ruleId,
        },
      }),
  });
}
