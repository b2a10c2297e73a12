import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CapaClient, CapaError } from '../client';
import { verifySignature } from '../signature';
import { startReceiver, waitFor, type Receiver } from '../../test/support/capa';
import type { CapaWebhookEvent } from '../types';
import { createSandbox, type Sandbox } from './server';

// Real HTTP everywhere: the sandbox delivers to a node:http receiver started in this file.

const KEY = 'sandbox-partner-key';
const SECRET = 'sandbox-webhook-secret';
// Full automatic schedule = (0+60+300+600+900) s × 0.0002 ≈ 0.37 s.
const TIME_SCALE = 0.0002;

let sandbox: Sandbox;
let receiver: Receiver;
let capa: CapaClient;
let seq = 0;

beforeAll(async () => {
  sandbox = await createSandbox({ timeScale: TIME_SCALE, seed: 7, deliveryTimeoutMs: 1_000 });
  receiver = await startReceiver();
  capa = new CapaClient({ baseUrl: sandbox.url, apiKey: KEY, maxRetries: 0 });
});
afterAll(async () => {
  await sandbox?.close();
  await receiver?.close();
});
beforeEach(async () => {
  sandbox.reset();
  receiver.received.length = 0;
  receiver.respond(() => ({ status: 200, body: '{"ok":true}' }));
  await capa.setWebhookSettings(receiver.url);
});
afterEach(async () => {
  // Nothing from one test may leak into the next.
  sandbox.setDelivery({});
  await sandbox.flushDeliveries();
});

async function newUser(alias = 'Ana López') {
  seq++;
  const externalUserId = `ext-${seq}`;
  const { userId } = await capa.createUser({ type: 'INDIVIDUAL', email: `user${seq}@example.mx`, externalUserId, alias });
  return { userId, externalUserId };
}

const events = () => receiver.received.map((r) => r.json as CapaWebhookEvent);
const eventsFor = (ext: string) =>
  events()
    .filter((e) => e.externalUserId === ext)
    .map((e) => e.event);

async function onlyNotification(eventType: string) {
  const list = await capa.listWebhookNotifications();
  const item = list.data.find((n) => n.eventType === eventType);
  if (!item) throw new Error(`no ${eventType} notification`);
  return capa.getWebhookNotification(item.id);
}

describe('signed webhooks', () => {
  it('sends CREATED_KYC then the outcome, POSTed as signed compact JSON', async () => {
    const u = await newUser();
    sandbox.setOutcome(u.userId, 'VERIFIED');
    await waitFor(() => receiver.received.length === 2, 'two webhooks');
    expect(eventsFor(u.externalUserId)).toEqual(['CREATED_KYC', 'VERIFIED_USER']);
    for (const r of receiver.received) {
      expect(r.method).toBe('POST');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.body).toBe(JSON.stringify({ type: 'KYC', event: (r.json as CapaWebhookEvent).event, externalUserId: u.externalUserId }));
      const sig = r.headers['capa-signature'] as string;
      expect(sig).toMatch(/^[0-9a-f]{64}$/);
      expect(verifySignature(r.raw, sig, [SECRET])).toEqual({ ok: true, secretIndex: 0, variant: 'raw' });
      expect(verifySignature(r.raw, sig, ['not-the-secret'])).toEqual({ ok: false, reason: 'mismatch' });
    }
    await sandbox.flushDeliveries();
    const list = await capa.listWebhookNotifications({ status: 'SENT' });
    expect(list.total).toBe(2);
  });

  it('keeps per-user order by default (CREATED_KYC first for every user)', async () => {
    const users = await Promise.all(Array.from({ length: 10 }, () => newUser()));
    for (const u of users) sandbox.setOutcome(u.userId, 'REJECTED');
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(20);
    for (const u of users) expect(eventsFor(u.externalUserId)).toEqual(['CREATED_KYC', 'REJECTED_KYC']);
  });

  it('PENDING emits only CREATED_KYC; resolving a review later emits only the outcome', async () => {
    const u = await newUser();
    sandbox.setOutcome(u.userId, 'PENDING');
    await sandbox.flushDeliveries();
    expect(eventsFor(u.externalUserId)).toEqual(['CREATED_KYC']);
    expect((await capa.getKycDetails(u.userId))?.aipriseSummary?.verificationResult).toBe('PENDING');

    sandbox.setOutcome(u.userId, 'REVIEW_NEEDED');
    sandbox.setOutcome(u.userId, 'VERIFIED');
    await sandbox.flushDeliveries();
    expect(eventsFor(u.externalUserId)).toEqual(['CREATED_KYC', 'REVIEW_NEEDED_KYC', 'VERIFIED_USER']);
    const d = await capa.getKycDetails(u.userId);
    expect(d?.aipriseSummary?.verificationResult).toBe('VERIFIED');
    expect(sandbox.users()[0]).toMatchObject({ kycState: 'VERIFIED', verificationResult: 'VERIFIED' });
  });

  it('tolerates arbitrary events (e.g. TRANSACTION) through the same pipe', async () => {
    sandbox.emitEvent({ type: 'TRANSACTION', event: 'COMPLETED_ON_RAMP', externalUserId: 'x', transactionId: 't1', fiatAmount: '1.01' });
    await sandbox.flushDeliveries();
    expect(receiver.received[0]!.body).toBe(
      '{"type":"TRANSACTION","event":"COMPLETED_ON_RAMP","externalUserId":"x","transactionId":"t1","fiatAmount":"1.01"}',
    );
  });
});

describe('delivery retries', () => {
  it('receiver answering 500 then 200 → retried and SENT with retryAttempts 1', async () => {
    receiver.respond((r) =>
      r.n === 1 ? { status: 500, body: '{"success":false,"error":{"message":"db down","id":""}}' } : { status: 200 },
    );
    const u = await newUser();
    sandbox.emitEvent({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId });
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[0]!.body).toBe(receiver.received[1]!.body);
    const n = await onlyNotification('CREATED_KYC');
    expect(n).toMatchObject({ status: 'SENT', retryAttempts: 1, manualRetryCount: 0 });
    // The last failure stays visible even after success.
    expect(n.latestErrorPayload).toEqual({ success: false, error: { message: 'db down', id: '' } });
    expect(sandbox.stats()).toMatchObject({ deliveriesAttempted: 2, deliveriesSucceeded: 1, deliveriesFailed: 1 });
  });

  it('receiver always failing → FAILED after the initial attempt + 5 retries, spaced by the scaled schedule', async () => {
    const at: number[] = [];
    receiver.respond(() => {
      at.push(Date.now());
      return { status: 503, body: 'maintenance' };
    });
    sandbox.emitEvent({ type: 'KYC', event: 'REJECTED_KYC', externalUserId: 'e1' });
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(6);
    const n = await onlyNotification('REJECTED_KYC');
    expect(n).toMatchObject({ status: 'FAILED', retryAttempts: 5, latestErrorPayload: { statusCode: 503, body: 'maintenance' } });
    // The last gap is 900 s × scale = 180 ms; the first retry is immediate.
    expect(at[5]! - at[4]!).toBeGreaterThanOrEqual(900 * 1000 * TIME_SCALE - 5);
  });

  it('network errors and timeouts count as failures', async () => {
    const sb = await createSandbox({
      timeScale: TIME_SCALE,
      deliveryTimeoutMs: 100,
      partners: [{ apiKey: KEY, webhookSecret: SECRET, webhookUrl: receiver.url }],
    });
    try {
      receiver.respond((r) => (r.n === 1 ? { status: 200, delayMs: 400 } : { status: 204 }));
      sb.emitEvent({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 't' });
      await sb.flushDeliveries();
      const c = new CapaClient({ baseUrl: sb.url, apiKey: KEY });
      const [item] = (await c.listWebhookNotifications()).data;
      const n = await c.getWebhookNotification(item!.id);
      expect(n).toMatchObject({ status: 'SENT', retryAttempts: 1, latestErrorPayload: { code: 'TIMEOUT' } });

      await c.setWebhookSettings('http://127.0.0.1:1/unreachable');
      sb.emitEvent({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: 't' });
      await sb.flushDeliveries();
      const failed = (await c.listWebhookNotifications({ status: 'FAILED' })).data[0]!;
      const detail = await c.getWebhookNotification(failed.id);
      expect(detail).toMatchObject({ status: 'FAILED', retryAttempts: 5, latestErrorPayload: { code: 'NETWORK_ERROR' } });
    } finally {
      await sb.close();
    }
  });

  it('records NOT_SENT and delivers nothing when the webhook URL is null', async () => {
    await capa.setWebhookSettings(null);
    const u = await newUser();
    sandbox.setOutcome(u.userId, 'VERIFIED');
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(0);
    const list = await capa.listWebhookNotifications({ status: 'NOT_SENT' });
    expect(list.total).toBe(2);
    expect(sandbox.stats().notifications).toMatchObject({ NOT_SENT: 2, SENT: 0 });
  });
});

describe('manual retry', () => {
  async function failedNotification() {
    receiver.respond(() => ({ status: 500, body: '{"error":"nope"}' }));
    sandbox.emitEvent({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: `m-${++seq}` });
    await sandbox.flushDeliveries();
    const list = await capa.listWebhookNotifications({ status: 'FAILED' });
    expect(list.total).toBe(1);
    return list.data[0]!.id;
  }

  it('resets a FAILED notification, re-delivers it and counts the manual retry', async () => {
    const id = await failedNotification();
    receiver.respond(() => ({ status: 200 }));
    const before = receiver.received.length;
    const r = await capa.retryWebhookNotification(id);
    expect(r).toMatchObject({ id, status: 'PENDING', retryAttempts: 0, manualRetryCount: 1, latestErrorPayload: null });
    expect(r?.lastManualRetryAt).toMatch(/Z$/);
    await sandbox.flushDeliveries();
    expect(receiver.received.length).toBe(before + 1);
    expect(await capa.getWebhookNotification(id)).toMatchObject({ status: 'SENT', manualRetryCount: 1, retryAttempts: 0 });
    // Now SENT: a further retry is refused.
    await expect(capa.retryWebhookNotification(id)).rejects.toMatchObject({
      status: 409,
      code: 'CONFLICT',
      capaMessage: 'Notification is not in FAILED status',
    });
  });

  it('allows at most 3 manual retries per notification', async () => {
    const id = await failedNotification();
    for (let i = 1; i <= 3; i++) {
      await capa.retryWebhookNotification(id);
      await sandbox.flushDeliveries(); // fails again through the whole schedule
      expect(await capa.getWebhookNotification(id)).toMatchObject({ status: 'FAILED', manualRetryCount: i, retryAttempts: 5 });
    }
    const err = await capa.retryWebhookNotification(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapaError);
    expect(err).toMatchObject({
      status: 409,
      code: 'CONFLICT',
      capaMessage: 'Partner webhook notification has reached the maximum number of manual retries (3)',
    });
  });

  it('answers 429 TOO_MANY_REQUESTS beyond 10 retry calls per partner per minute', async () => {
    const id = await failedNotification();
    receiver.respond(() => ({ status: 200 }));
    await capa.retryWebhookNotification(id); // 1: accepted
    for (let i = 2; i <= 10; i++) {
      await expect(capa.retryWebhookNotification(id)).rejects.toMatchObject({ status: 409 });
    }
    const err = (await capa.retryWebhookNotification(id).catch((e: unknown) => e)) as CapaError;
    expect(err).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS', capaMessage: 'Rate limit exceeded. Try again in a few seconds.' });
    expect(err.retryAfterMs).toBeGreaterThan(30_000); // the client (max 30 s) did not sleep on it
    expect(sandbox.stats().apiCalls.byOp.retryWebhookNotification).toEqual({ '200': 1, '409': 9, '429': 1 });
    // The limit is per partner: the other partner is unaffected.
    const other = new CapaClient({ baseUrl: sandbox.url, apiKey: 'sandbox-other-partner-key' });
    await expect(other.retryWebhookNotification(id)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });
});

describe('delivery faults', () => {
  it('dropRate 1: events are recorded FAILED and never delivered; a manual retry delivers them', async () => {
    sandbox.setDelivery({ dropRate: 1 });
    const u = await newUser();
    sandbox.setOutcome(u.userId, 'VERIFIED');
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(0);
    const failed = await capa.listWebhookNotifications({ status: 'FAILED' });
    expect(failed.total).toBe(2);
    expect(sandbox.stats().deliveriesDropped).toBe(2);
    sandbox.setDelivery({});
    await capa.retryWebhookNotification(failed.data[0]!.id);
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(1);
  });

  it('duplicateRate 1: every delivered event arrives twice, the log still shows one SENT record each', async () => {
    sandbox.setDelivery({ duplicateRate: 1 });
    const u = await newUser();
    sandbox.setOutcome(u.userId, 'REVIEW_NEEDED');
    await sandbox.flushDeliveries();
    expect(eventsFor(u.externalUserId).sort()).toEqual(['CREATED_KYC', 'CREATED_KYC', 'REVIEW_NEEDED_KYC', 'REVIEW_NEEDED_KYC']);
    for (const r of receiver.received) expect(verifySignature(r.raw, r.headers['capa-signature'] as string, [SECRET]).ok).toBe(true);
    expect((await capa.listWebhookNotifications({ status: 'SENT' })).total).toBe(2);
    expect(sandbox.stats().deliveriesDuplicated).toBe(2);
  });

  it('reorder: some users see their outcome before CREATED_KYC', async () => {
    sandbox.setDelivery({ reorder: true });
    const users = await Promise.all(Array.from({ length: 12 }, () => newUser()));
    for (const u of users) sandbox.setOutcome(u.userId, 'VERIFIED');
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(24);
    const outOfOrder = users.filter((u) => eventsFor(u.externalUserId)[0] === 'VERIFIED_USER');
    expect(outOfOrder.length).toBeGreaterThan(0);
    for (const u of users) expect(eventsFor(u.externalUserId).sort()).toEqual(['CREATED_KYC', 'VERIFIED_USER']);
  });

  it('paused: nothing is delivered (flush still returns) until unpaused', async () => {
    sandbox.setDelivery({ paused: true });
    const u = await newUser();
    sandbox.setOutcome(u.userId, 'VERIFIED');
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(0);
    expect((await capa.listWebhookNotifications({ status: 'PENDING' })).total).toBe(2);
    sandbox.setDelivery({ paused: false });
    await sandbox.flushDeliveries();
    expect(eventsFor(u.externalUserId)).toEqual(['CREATED_KYC', 'VERIFIED_USER']);
  });
});

describe('hosted KYC page', () => {
  it('GET shows the masked customer and the four choices; POST redirects 303 to partnerRedirectUri and emits webhooks', async () => {
    const u = await newUser('María Pérez');
    const { kycLink } = await capa.generateKycLink(u.userId, {
      country: 'MX',
      partnerRedirectUri: 'https://admin.example.com/kyc/return?x=1',
    });
    const page = await fetch(kycLink);
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const label of ['Approve (verified)', 'Reject', 'Needs manual review', 'Submit and leave pending']) expect(html).toContain(label);
    expect(html).toContain('María Pérez');
    expect(html).not.toContain(`user${seq}@example.mx`); // e-mail is masked
    expect(html).toContain('@example.mx');

    const post = await fetch(kycLink, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'outcome=REJECTED',
    });
    expect(post.status).toBe(303);
    expect(post.headers.get('location')).toBe('https://admin.example.com/kyc/return?x=1');
    await sandbox.flushDeliveries();
    expect(eventsFor(u.externalUserId)).toEqual(['CREATED_KYC', 'REJECTED_KYC']);
    expect((await capa.getKycDetails(u.userId))?.faceMatchInfo?.status).toBe('DECLINED');
    expect(sandbox.users()[0]!.links[0]).toMatchObject({ state: 'used', outcome: 'REJECTED' });

    // Single use.
    const again = await fetch(kycLink, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'outcome=VERIFIED',
    });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('already used');
    expect((await fetch(kycLink)).status).toBe(409);
    await sandbox.flushDeliveries();
    expect(receiver.received).toHaveLength(2);
  });

  it('without a redirect URI shows a thank-you page; a newer link expires the older one', async () => {
    const u = await newUser();
    const first = await capa.generateKycLink(u.userId, { country: 'DO' });
    const second = await capa.generateKycLink(u.userId, { country: 'DO' });
    const old = await fetch(first.kycLink);
    expect(old.status).toBe(410);
    expect(await old.text()).toContain('This link has expired');
    const post = await fetch(second.kycLink, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'outcome=PENDING',
    });
    expect(post.status).toBe(200);
    expect(await post.text()).toContain('Thank you');
    await sandbox.flushDeliveries();
    expect(eventsFor(u.externalUserId)).toEqual(['CREATED_KYC']);
    const d = await capa.getKycDetails(u.userId);
    expect(d?.idInfo?.issueCountryCode).toBe('DO');
    expect(d?.idInfo?.status).toBe('PENDING');
  });

  it('rejects a POST without a valid outcome and unknown links', async () => {
    const u = await newUser();
    const { kycLink } = await capa.generateKycLink(u.userId, { country: 'MX' });
    const bad = await fetch(kycLink, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'outcome=MAYBE',
    });
    expect(bad.status).toBe(400);
    expect((await fetch(kycLink)).status).toBe(200); // still usable
    expect((await fetch(`${sandbox.url}/kyc/session/0000`)).status).toBe(404);
    // A broken percent-escape must not crash the server.
    expect((await fetch(`${sandbox.url}/kyc/session/%E0%A4%A`)).status).toBe(404);
    const api = await fetch(`${sandbox.url}/api/partner/v2/users/%E0%A4%A/kyc/verification-link`, {
      method: 'POST',
      headers: { 'partner-api-key': KEY, 'content-type': 'application/json' },
      body: '{"country":"MX"}',
    });
    expect(api.status).toBe(404);
    expect((await fetch(`${sandbox.url}/`)).status).toBe(200);
  });
});

describe('sandbox controls over HTTP (/__sandbox/)', () => {
  const post = (path: string, body?: unknown) =>
    fetch(`${sandbox.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('kyc-outcome drives a user without a browser and validates its input', async () => {
    const u = await newUser();
    const ok = await post(`/__sandbox/users/${u.userId}/kyc-outcome`, { outcome: 'VERIFIED', verificationResult: 'APPROVED' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ events: ['CREATED_KYC', 'VERIFIED_USER'], verificationResult: 'APPROVED' });
    expect((await post(`/__sandbox/users/${u.userId}/kyc-outcome`, { outcome: 'MAYBE' })).status).toBe(400);
    expect((await post('/__sandbox/users/nope/kyc-outcome', { outcome: 'VERIFIED' })).status).toBe(404);
    const biz = await capa.createUser({ type: 'BUSINESS', email: 'biz@example.mx', externalUserId: 'biz-1' });
    expect((await post(`/__sandbox/users/${biz.userId}/kyc-outcome`, { outcome: 'VERIFIED' })).status).toBe(400);
  });

  it('users (labelled non-Capa), stats, faults, delivery, flush and reset', async () => {
    const u = await newUser();
    await capa.generateKycLink(u.userId, { country: 'MX' });
    const users = (await (await fetch(`${sandbox.url}/__sandbox/users`)).json()) as {
      notCapa: boolean;
      users: Array<Record<string, unknown>>;
    };
    expect(users.notCapa).toBe(true);
    expect(users.users[0]).toMatchObject({
      userId: u.userId,
      externalUserId: u.externalUserId,
      type: 'INDIVIDUAL',
      kycState: 'LINK_ISSUED',
      verificationResult: null,
    });

    const faults = await post('/__sandbox/faults', { errorRate: 1 });
    expect(await faults.json()).toEqual({ faults: { errorRate: 1 } });
    await expect(capa.getKycDetails(u.userId)).rejects.toMatchObject({ status: 500, capaMessage: 'Failed to get user KYC details' });
    expect((await post('/__sandbox/faults', { errorRate: 2 })).status).toBe(400);
    await post('/__sandbox/faults', {});
    await expect(capa.getKycDetails(u.userId)).resolves.toBeNull();

    expect(await (await post('/__sandbox/delivery', { paused: true })).json()).toEqual({
      delivery: { dropRate: 0, duplicateRate: 0, reorder: false, paused: true },
    });
    sandbox.setOutcome(u.userId, 'VERIFIED');
    await post('/__sandbox/delivery', { paused: false });
    expect((await post('/__sandbox/flush')).status).toBe(200);
    expect(receiver.received).toHaveLength(2);

    const stats = (await (await fetch(`${sandbox.url}/__sandbox/stats`)).json()) as Record<string, unknown>;
    expect(stats).toMatchObject({ usersCreated: 1, linksGenerated: 1, kycSubmissions: 1, deliveriesSucceeded: 2, injected500: 1 });

    expect((await post('/__sandbox/reset')).status).toBe(200);
    expect(sandbox.users()).toEqual([]);
    expect(sandbox.stats().apiCalls.total).toBe(0);
  });

  it('the index page names the partner key and the current webhook URL', async () => {
    const html = await (await fetch(`${sandbox.url}/`)).text();
    expect(html).toContain('sandbox-partner-key');
    expect(html).toContain(receiver.url);
    expect(html).toContain('/__sandbox/mailbox');
    expect(html).toContain('/__sandbox/users');
  });
});

describe('create user: the e-mail check', () => {
  it('accepts internationalised addresses and refuses what is not an address with 400 BAD_REQUEST', async () => {
    // Capa only says the email is "validated"; the sandbox applies our one rule (domain/email.ts).
    for (const email of ['sofía.392@example.mx', 'josé.núñez@exämple.do', 'ana+kyc@example.mx']) {
      await expect(capa.createUser({ type: 'INDIVIDUAL', email, externalUserId: `intl-${++seq}` })).resolves.toHaveProperty('userId');
    }
    expect(sandbox.users().map((u) => u.email)).toEqual(expect.arrayContaining(['sofía.392@example.mx', 'josé.núñez@exämple.do']));
    for (const email of [
      'ana@localhost',
      '"ana"@example.mx',
      'ana lópez@example.mx',
      'ana@example.mx.',
      'ana@[127.0.0.1]',
      `${'a'.repeat(65)}@example.mx`,
    ]) {
      const err = await capa.createUser({ type: 'INDIVIDUAL', email, externalUserId: `bad-${++seq}` }).catch((e: unknown) => e);
      expect(err, email).toBeInstanceOf(CapaError);
      expect(err, email).toMatchObject({ status: 400, code: 'BAD_REQUEST', capaMessage: 'Provided email is not valid' });
    }
  });
});
