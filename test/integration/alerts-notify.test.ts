import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endSilence, eventsFor, insertSilence, openAlert } from '../../db/repositories/alerts.js';
import { commitImport, createImport, pauseImport, resumeImport } from '../../db/repositories/imports.js';
import { listMessages } from '../../db/repositories/notifications.js';
import { insertUser } from '../../db/repositories/users.js';
import type { AlertRuleId } from '../../domain/alerts.js';
import { evaluateAlerts, type EngineDeps } from '../../jobs/alerts/engine.js';
import { deliverWithoutWorkers } from '../../jobs/alerts/watch.js';
import { verifyAlertSignature } from '../../jobs/alerts/webhook.js';
import { logger } from '../../lib/logger.js';
import { startReceiver, type Receiver } from '../support/capa.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';

/**
 * Alert messages: the e-mail through the real mail path (a real SMTP server) to the severity's
 * list, the signed webhook to a real HTTP receiver, both in the notification ledger; one message
 * per firing however often the rules are evaluated; retries with backoff; silences.
 */
const SECRET = 'alert-webhook-secret-0123';
const S = 1000;

describe('alert notifications', () => {
  let rt: TestRuntime;
  let smtp: TestSmtp;
  let hook: Receiver;
  let deps: EngineDeps;

  beforeAll(async () => {
    smtp = await startTestSmtp();
    hook = await startReceiver();
    rt = await createTestRuntime({
      worker: false,
      env: {
        SMTP_URL: smtp.url,
        MAIL_FROM: 'KYC Desk <alerts@desk.example>',
        NOTIFY_BACKOFF_MS: '40',
        NOTIFY_SEND_ATTEMPTS: '4',
        ALERTS_EMAIL_CRITICAL: 'oncall@desk.test, lead@desk.test',
        ALERTS_EMAIL_WARNING: 'lead@desk.test',
        ALERTS_WEBHOOK_URL: `${hook.url.replace('/webhooks/capa', '')}/hooks/kyc-alerts`,
        ALERTS_WEBHOOK_SECRET: SECRET,
      },
    });
    deps = { db: rt.db, queues: rt.queues, env: rt.env, logger };
  });
  afterAll(async () => {
    await rt?.close();
    await hook?.close();
    await smtp?.close();
  });

  const evaluate = async (rule: AlertRuleId, now: number) => {
    const [out] = await evaluateAlerts(deps, { rules: [rule], now });
    expect(out?.error).toBeUndefined();
    return rt.db.selectFrom('alerts').selectAll().where('ruleId', '=', rule).orderBy('pendingSince', 'desc').limit(1).executeTakeFirst();
  };
  const messages = (alertId: string) =>
    rt.db.selectFrom('notifications').selectAll().where('alertId', '=', alertId).orderBy('createdAt').orderBy('channel').execute();
  const settled = (alertId: string, n: number) =>
    waitFor(
      async () => {
        const rows = await messages(alertId);
        return rows.length === n && rows.every((r) => r.status !== 'queued') ? rows : null;
      },
      { what: `${n} settled messages`, timeoutMs: 15_000 },
    );
  const postsFor = (alertId: string) => hook.received.filter((r) => (r.json as { alert?: { id?: string } })?.alert?.id === alertId);

  async function pausedImport(name: string) {
    const id = await createImport(rt.db, { fileName: name, fileSha256: randomUUID(), fileBytes: 1, delimiter: ',', createdBy: null });
    await commitImport(rt.db, id, null);
    await pauseImport(rt.db, id, 'outage', 'Capa is not answering');
    return id;
  }

  it('e-mails the severity list and posts a signed webhook once per firing, and once when it resolves', async () => {
    await rt.startWorkers({ schedules: false });
    const importId = await pausedImport('night-batch.csv');
    const t0 = Date.now();
    const alert = (await evaluate('imports.paused', t0))!;
    expect(alert.state).toBe('firing');
    // Evaluated again and again: still one message per recipient.
    for (let i = 1; i <= 5; i++) await evaluate('imports.paused', t0 + i * S);
    const rows = await settled(alert.id, 2);
    expect(rows.map((r) => [r.kind, r.channel, r.address, r.status, r.userId])).toEqual([
      ['alert_firing', 'email', 'lead@desk.test', 'sent', null],
      ['alert_firing', 'webhook', `${new URL(hook.url).origin}/…`, 'sent', null],
    ]);

    // Both are in the notification ledger's list, without a customer.
    const listed = await listMessages(rt.db, { sort: 'createdAt', dir: 'desc', page: 1, pageSize: 50 });
    expect(listed.rows.filter((r) => r.alertId === alert.id).map((r) => [r.kind, r.channel, r.externalUserId])).toEqual([
      ['alert_firing', 'webhook', undefined],
      ['alert_firing', 'email', undefined],
    ]);

    // The e-mail went through the mail path to the warning list only, in the instance's language.
    expect(smtp.to('oncall@desk.test')).toHaveLength(0);
    const [mail] = smtp.to('lead@desk.test');
    expect(smtp.to('lead@desk.test')).toHaveLength(1);
    expect(mail!.subject).toBe('[KYC Desk · warning] Import paused by a Capa outage');
    expect(mail!.from).toBe('KYC Desk <alerts@desk.example>');
    expect(mail!.text).toContain('night-batch.csv');
    expect(mail!.text).toContain(`http://127.0.0.1:3999/alerts?alert=${alert.id}`);
    expect(mail!.text).toContain(`http://127.0.0.1:3999/imports/${importId}`);
    expect(mail!.headers['x-kyc-desk-alert']).toBe(alert.id);
    expect(mail!.headers['x-kyc-desk-rule']).toBe('imports.paused');

    // The webhook: signed over the exact body, verifiable by the receiver with the shared secret.
    const posts = postsFor(alert.id);
    expect(posts).toHaveLength(1);
    const post = posts[0]!;
    expect(post.path).toBe('/hooks/kyc-alerts');
    const expected = `sha256=${createHmac('sha256', SECRET).update(post.raw).digest('hex')}`;
    expect(post.headers['x-kyc-desk-signature']).toBe(expected);
    expect(verifyAlertSignature(SECRET, post.body, post.headers['x-kyc-desk-signature'] as string)).toBe(true);
    expect(verifyAlertSignature('another-secret-entirely', post.body, post.headers['x-kyc-desk-signature'] as string)).toBe(false);
    expect(verifyAlertSignature(SECRET, post.body.replace('imports.paused', 'imports.pausex'), expected)).toBe(false);
    expect(post.headers['x-kyc-desk-delivery']).toBe(rows[1]!.id);
    expect(post.json).toMatchObject({
      event: 'alert.firing',
      deliveryId: rows[1]!.id,
      alert: { id: alert.id, rule: 'imports.paused', severity: 'warning', state: 'firing', title: 'Import paused by a Capa outage' },
    });

    // Resolved: those told are told once more.
    await resumeImport(rt.db, importId);
    await evaluate('imports.paused', t0 + 10 * S);
    const resolved = await evaluate('imports.paused', t0 + 310 * S);
    expect(resolved?.state).toBe('resolved');
    await evaluate('imports.paused', t0 + 320 * S);
    const all = await settled(alert.id, 4);
    expect(all.filter((r) => r.kind === 'alert_resolved').map((r) => [r.channel, r.status])).toEqual([
      ['email', 'sent'],
      ['webhook', 'sent'],
    ]);
    expect(smtp.to('lead@desk.test').map((m) => m.subject)).toEqual([
      '[KYC Desk · warning] Import paused by a Capa outage',
      '[KYC Desk · resolved] Import paused by a Capa outage',
    ]);
    expect(postsFor(alert.id).map((p) => (p.json as { event: string }).event)).toEqual(['alert.firing', 'alert.resolved']);
    const events = (await eventsFor(rt.db, [alert.id])).map((e) => e.kind);
    expect(events).toEqual(['fired', 'notified', 'resolving', 'resolved', 'notified']);
  });

  it('retries the webhook with backoff on 5xx, and records a refusal as final', async () => {
    let calls = 0;
    hook.respond(() => (++calls <= 2 ? { status: 503, body: 'busy' } : { status: 204 }));
    try {
      // A critical rule: both addresses of the critical list, and the webhook.
      const body = JSON.stringify({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'x' });
      for (let i = 0; i < 3; i++) await fetch(rt.intakeUrl, { method: 'POST', headers: { 'capa-signature': 'deadbeef' }, body });
      const alert = (await evaluate('webhooks.signature_failures', Date.now()))!;
      expect(alert.state).toBe('firing');
      const rows = await settled(alert.id, 3);
      expect(rows.map((r) => [r.channel, r.address, r.status]).sort()).toEqual([
        ['email', 'lead@desk.test', 'sent'],
        ['email', 'oncall@desk.test', 'sent'],
        ['webhook', `${new URL(hook.url).origin}/…`, 'sent'],
      ]);
      const webhookRow = rows.find((r) => r.channel === 'webhook')!;
      expect(webhookRow.attempts).toBe(3);
      const posts = postsFor(alert.id);
      expect(posts).toHaveLength(3);
      // The same delivery each time, each one signed.
      expect(new Set(posts.map((p) => p.headers['x-kyc-desk-delivery']))).toEqual(new Set([webhookRow.id]));
      for (const p of posts) expect(verifyAlertSignature(SECRET, p.body, p.headers['x-kyc-desk-signature'] as string)).toBe(true);

      hook.respond(() => ({ status: 410, body: 'gone' }));
      const t = Date.now() + 4000 * S;
      await evaluate('webhooks.signature_failures', t);
      expect((await evaluate('webhooks.signature_failures', t + 300 * S))?.state).toBe('resolved');
      const after = await settled(alert.id, 6);
      const refused = after.find((r) => r.kind === 'alert_resolved' && r.channel === 'webhook')!;
      expect(refused).toMatchObject({ status: 'failed', attempts: 1 });
      expect(refused.failureReason).toContain('HTTP 410');
    } finally {
      hook.respond(() => ({ status: 200, body: '{"ok":true}' }));
    }
  });

  it('a silenced alert notifies nobody and says which silence; it is notified once the silence ends', async () => {
    const u = await insertUser(rt.db, { email: 'drifty@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    const now = Date.now();
    const silence = await insertSilence(
      rt.db,
      {
        ruleId: 'drift.spike',
        reason: 'Capa maintenance window announced',
        endsAt: new Date(now + 3600 * S).toISOString(),
        by: { operatorId: null, name: 'lead@desk.test' },
      },
      // The silence starts at the test's clock, which the evaluations below use (on a busy
      // machine the real clock is already past it, and the first evaluation came before the silence).
      new Date(now).toISOString(),
    );
    for (let i = 0; i < 6; i++) {
      await rt.db
        .insertInto('driftEvents')
        .values({
          userId: u.id,
          detectedAt: new Date(now - i * S).toISOString(),
          wasState: 'LINK_ISSUED',
          nowState: 'VERIFIED',
          jobName: 'fetch-details',
        })
        .execute();
    }
    const before = { mails: smtp.received.length, posts: hook.received.length };
    const alert = (await evaluate('drift.spike', now))!;
    for (let i = 1; i <= 3; i++) await evaluate('drift.spike', now + i * S);
    expect(alert.state).toBe('firing');
    const held = (await openAlert(rt.db, 'drift.spike'))!;
    expect(held.silenceId).toBe(silence.id);
    expect(held.notifiedAt).toBeNull();
    const events = await eventsFor(rt.db, [alert.id]);
    expect(events.map((e) => e.kind)).toEqual(['fired', 'silenced']);
    expect(JSON.parse(events[1]!.detail!)).toMatchObject({
      silenceId: silence.id,
      reason: 'Capa maintenance window announced',
      by: 'lead@desk.test',
    });
    expect(await messages(alert.id)).toEqual([]);
    // Nothing reached the mail server or the webhook.
    expect(smtp.received.length).toBe(before.mails);
    expect(hook.received.length).toBe(before.posts);

    expect(await endSilence(rt.db, silence.id, { operatorId: null, name: 'lead@desk.test' })).toBe(true);
    await evaluate('drift.spike', now + 5 * S);
    const rows = await settled(alert.id, 2);
    expect(rows.map((r) => r.channel)).toEqual(['email', 'webhook']);
    expect((await openAlert(rt.db, 'drift.spike'))?.silenceId).toBeNull();
  });

  it('with no worker serving notifications, the web process delivers alert messages itself, once', async () => {
    await rt.workers?.close(5000);
    rt.workers = null;
    await waitFor(async () => (await rt.queues.queue('notifications').getWorkers()).length === 0, { what: 'no notifications worker' });
    const importId = await pausedImport('no-worker.csv');
    const alert = (await evaluate('imports.paused', Date.now()))!;
    expect(alert.state).toBe('firing');
    expect((await messages(alert.id)).map((r) => r.status)).toEqual(['queued', 'queued']);
    expect(await deliverWithoutWorkers(deps)).toBe(2);
    expect(await deliverWithoutWorkers(deps)).toBe(0);
    const rows = await messages(alert.id);
    expect(rows.map((r) => [r.channel, r.status, r.attempts])).toEqual([
      ['email', 'sent', 1],
      ['webhook', 'sent', 1],
    ]);
    expect(postsFor(alert.id)).toHaveLength(1);
    // A worker that comes back finds them sent and sends nothing again.
    await rt.startWorkers({ schedules: false });
    // The two send jobs queued while no worker ran are taken and finish without sending.
    await waitFor(
      async () => {
        const c = await rt.queues.queue('notifications').getJobCounts('waiting', 'active');
        return c.waiting + c.active === 0;
      },
      { what: 'queued send jobs consumed' },
    );
    expect(postsFor(alert.id)).toHaveLength(1);
    expect(smtp.received.filter((m) => m.headers['x-kyc-desk-alert'] === alert.id)).toHaveLength(1);
    await resumeImport(rt.db, importId);
  });
});
