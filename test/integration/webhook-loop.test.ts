import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { relayInbox } from '../../jobs/handlers/relay-inbox.handler.js';
import { Queues } from '../../jobs/queues.js';
import { findUserById, insertUser, stateHistory } from '../../db/repositories/users.js';
import { createTestRuntime, waitFor, WEBHOOK_SECRET, type TestRuntime } from '../support/runtime.js';
import { freePort } from '../setup/global-setup.js';

async function onboard(rt: TestRuntime, email: string) {
  const user = await insertUser(rt.db, { email, type: 'INDIVIDUAL', country: 'MX' });
  await rt.queues.add(createCapaUser, {
    userId: user.id,
    sendLink: { country: 'MX', redirectUri: 'https://partner.example/kyc/return', requestId: randomUUID() },
  });
  const withLink = await waitFor(
    async () => {
      const u = await findUserById(rt.db, user.id);
      return u?.kycState === 'LINK_ISSUED' && u.capaUserId ? u : null;
    },
    { what: 'Capa user and link' },
  );
  const link = await rt.db
    .selectFrom('kycLinks')
    .selectAll()
    .where('userId', '=', user.id)
    .where('status', '=', 'active')
    .executeTakeFirstOrThrow();
  return { user: withLink, link };
}

async function postSigned(rt: TestRuntime, body: string, secret = WEBHOOK_SECRET) {
  return fetch(rt.intakeUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, secret) },
    body,
  });
}

describe('the KYC loop end to end (sandbox → signed webhook → worker → state)', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt?.close();
  });

  for (const outcome of ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED'] as const) {
    it(`create → link → customer picks ${outcome} on the hosted page → state ${outcome}`, async () => {
      const { user, link } = await onboard(rt, `loop-${outcome.toLowerCase()}@example.mx`);
      // The customer's browser: open the hosted page, submit the outcome, get redirected back.
      const page = await fetch(link.url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Approve');
      const submit = await fetch(link.url, { method: 'POST', body: new URLSearchParams({ outcome }), redirect: 'manual' });
      expect(submit.status).toBe(303);
      expect(submit.headers.get('location')).toBe('https://partner.example/kyc/return');

      const final = await waitFor(
        async () => {
          const u = await findUserById(rt.db, user.id);
          return u?.kycState === outcome ? u : null;
        },
        { what: `state ${outcome}` },
      );
      expect(final.kycStateCause).toMatch(/^(webhook|poll):/);
      const hist = await stateHistory(rt.db, user.id);
      expect(hist.map((h) => h.toState)).toEqual(['LINK_ISSUED', 'IN_PROGRESS', outcome]);
      // Both deliveries were stored, verified and processed.
      const inbox = await rt.db
        .selectFrom('webhookInbox')
        .selectAll()
        .where('externalUserId', '=', user.externalUserId)
        .orderBy('id')
        .execute();
      expect(inbox.map((d) => `${d.eventName}:${d.signatureVerdict}:${d.status}`)).toEqual([
        'CREATED_KYC:valid:processed',
        `${outcome === 'VERIFIED' ? 'VERIFIED_USER' : outcome === 'REJECTED' ? 'REJECTED_KYC' : 'REVIEW_NEEDED_KYC'}:valid:processed`,
      ]);
      // The outcome triggered a details fetch, stored as a snapshot.
      await waitFor(() => rt.db.selectFrom('kycDetails').select('id').where('userId', '=', user.id).executeTakeFirst(), {
        what: 'details snapshot',
      });
    });
  }

  it('duplicated and reordered deliveries converge on the true state without moving backwards', async () => {
    rt.sandbox.setDelivery({ duplicateRate: 1, reorder: true });
    try {
      const users = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => onboard(rt, `reorder-${i}@example.mx`)));
      const outcomes = ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED', 'VERIFIED', 'REJECTED', 'REVIEW_NEEDED'] as const;
      users.forEach(({ user }, i) => rt.sandbox.setOutcome(user.capaUserId!, outcomes[i]));
      await rt.sandbox.flushDeliveries();
      for (const [i, { user }] of users.entries()) {
        await waitFor(async () => (await findUserById(rt.db, user.id))?.kycState === outcomes[i], { what: `user ${i} ${outcomes[i]}` });
        const hist = await stateHistory(rt.db, user.id);
        // Never a final state it did not reach, and never IN_PROGRESS after a final state.
        const finals = hist.filter((h) => ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED'].includes(h.toState)).map((h) => h.toState);
        expect(new Set(finals)).toEqual(new Set([outcomes[i]]));
        const firstFinal = hist.findIndex((h) => h.toState === outcomes[i]);
        expect(hist.slice(firstFinal + 1).some((h) => h.toState === 'IN_PROGRESS')).toBe(false);
      }
      const dups = await rt.db.selectFrom('webhookInbox').select(['id']).where('effect', '=', 'duplicate').execute();
      expect(dups.length).toBeGreaterThan(0);
    } finally {
      rt.sandbox.setDelivery({ duplicateRate: 0, reorder: false });
    }
  });

  it('a dropped delivery is settled by Get KYC Details (reconciliation)', async () => {
    const { user } = await onboard(rt, 'dropped@example.mx');
    rt.sandbox.setDelivery({ dropRate: 1 });
    try {
      rt.sandbox.setOutcome(user.capaUserId!, 'VERIFIED');
      await rt.sandbox.flushDeliveries();
    } finally {
      rt.sandbox.setDelivery({ dropRate: 0 });
    }
    expect((await findUserById(rt.db, user.id))?.kycState).toBe('LINK_ISSUED');
    const { fetchDetails } = await import('../../jobs/definitions/fetch-details.js');
    await rt.queues.add(fetchDetails, { userId: user.id, cause: 'test', requestId: 'manual-1' });
    await waitFor(async () => (await findUserById(rt.db, user.id))?.kycState === 'VERIFIED', { what: 'polled VERIFIED' });
    const hist = await stateHistory(rt.db, user.id);
    expect(hist.at(-1)).toMatchObject({ toState: 'VERIFIED', causeType: 'poll', drift: 1 });
  });

  it('Get KYC Details refused by Capa (unknown user) fails at once instead of retrying', async () => {
    const u = await insertUser(rt.db, { email: 'unknown-at-capa@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    await rt.db.updateTable('users').set({ capaUserId: randomUUID(), capaSync: 'created' }).where('id', '=', u.id).execute();
    const { fetchDetails } = await import('../../jobs/definitions/fetch-details.js');
    await rt.queues.add(fetchDetails, { userId: u.id, cause: 'test', requestId: 'refused-1' });
    const run = await waitFor(
      () => rt.db.selectFrom('jobRuns').selectAll().where('userId', '=', u.id).where('status', '=', 'failed').executeTakeFirst(),
      { what: 'failed run' },
    );
    expect(run.error).toMatch(/Capa does not know this user|not found/i);
    const runs = await rt.db.selectFrom('jobRuns').select('id').where('userId', '=', u.id).execute();
    expect(runs).toHaveLength(1);
  });

  it('a TRANSACTION event sharing the URL is acknowledged and stored as ignored', async () => {
    const ids = rt.sandbox.emitEvent({ type: 'TRANSACTION', event: 'COMPLETED_ON_RAMP', externalUserId: 'someone', transactionId: 't1' });
    expect(ids.length).toBe(1);
    await rt.sandbox.flushDeliveries();
    const row = await waitFor(
      () => rt.db.selectFrom('webhookInbox').selectAll().where('eventType', '=', 'TRANSACTION').executeTakeFirst(),
      { what: 'stored transaction event' },
    );
    expect(row).toMatchObject({ status: 'ignored', signatureVerdict: 'valid', eventName: 'COMPLETED_ON_RAMP' });
  });

  it('a final→final conflict asks Capa instead of overwriting', async () => {
    const { user } = await onboard(rt, 'conflict@example.mx');
    rt.sandbox.setOutcome(user.capaUserId!, 'VERIFIED');
    await waitFor(async () => (await findUserById(rt.db, user.id))?.kycState === 'VERIFIED');
    // A stray REJECTED_KYC (validly signed) arrives later; Capa's truth is still VERIFIED.
    const res = await postSigned(rt, JSON.stringify({ type: 'KYC', event: 'REJECTED_KYC', externalUserId: user.externalUserId }));
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: number };
    const d = await waitFor(async () => {
      const r = await rt.db.selectFrom('webhookInbox').selectAll().where('id', '=', id).executeTakeFirst();
      return r?.status === 'processed' ? r : null;
    });
    expect(d.effect).toBe('conflict_check');
    await waitFor(
      () =>
        rt.db
          .selectFrom('jobRuns')
          .select('id')
          .where('jobName', '=', 'fetch-details')
          .where('userId', '=', user.id)
          .where('status', '=', 'completed')
          .executeTakeFirst(),
      { what: 'conflict check' },
    );
    expect((await findUserById(rt.db, user.id))?.kycState).toBe('VERIFIED');
  });
});

describe('webhook intake edge cases', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false, env: { CAPA_WEBHOOK_SECRET: `${WEBHOOK_SECRET},rotated-second-secret` } });
  });
  afterAll(async () => {
    await rt?.close();
  });

  const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'edge-1' });
  const lastRow = () => rt.db.selectFrom('webhookInbox').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();

  it.each([
    ['missing', undefined, 'missing'],
    ['short', 'abcd', 'malformed'],
    ['non-hex', 'z'.repeat(64), 'malformed'],
    ['wrong secret', signBody(body, 'not-the-secret'), 'mismatch'],
  ])('%s signature → 401, stored as rejected', async (_name, sig, verdict) => {
    const res = await fetch(rt.intakeUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(sig ? { 'capa-signature': sig } : {}) },
      body,
    });
    expect(res.status).toBe(401);
    expect(await lastRow()).toMatchObject({ status: 'rejected', signatureVerdict: verdict, rawBody: body });
  });

  it('tampered body → 401', async () => {
    const res = await fetch(rt.intakeUrl, {
      method: 'POST',
      headers: { 'capa-signature': signBody(body, WEBHOOK_SECRET) },
      body: body.replace('edge-1', 'edge-2'),
    });
    expect(res.status).toBe(401);
  });

  it('the rotated second secret is accepted', async () => {
    const res = await postSigned(
      rt,
      JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'rot-1' }),
      'rotated-second-secret',
    );
    expect(res.status).toBe(200);
    expect(await lastRow()).toMatchObject({ signatureVerdict: 'valid', secretIndex: 1, status: 'received' });
  });

  it('malformed JSON with a valid signature → 400, stored', async () => {
    const res = await postSigned(rt, '{"type":"KYC",');
    expect(res.status).toBe(400);
    expect(await lastRow()).toMatchObject({ status: 'rejected', signatureVerdict: 'valid', error: 'malformed JSON' });
    const arr = await postSigned(rt, '[1,2]');
    expect(arr.status).toBe(400);
  });

  it('unknown KYC event → 2xx, ignored', async () => {
    const res = await postSigned(rt, JSON.stringify({ type: 'KYC', event: 'SOMETHING_NEW', externalUserId: 'x' }));
    expect(res.status).toBe(200);
    expect(await lastRow()).toMatchObject({ status: 'ignored', eventName: 'SOMETHING_NEW' });
  });

  it('a duplicate → 2xx, stored, marked as a duplicate of the first', async () => {
    const b = JSON.stringify({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'dup-1' });
    const first = (await (await postSigned(rt, b)).json()) as { id: number };
    const second = await postSigned(rt, b);
    expect(second.status).toBe(200);
    expect(await lastRow()).toMatchObject({ status: 'ignored', duplicateOf: first.id, effect: 'duplicate' });
  });

  it('oversized body (> 256 KB) → 413 and nothing stored', async () => {
    const before = await lastRow();
    const big = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'big', pad: 'x'.repeat(300 * 1024) });
    const res = await postSigned(rt, big);
    expect(res.status).toBe(413);
    expect((await lastRow()).id).toBe(before.id);
  });

  it('GET is refused with 405', async () => {
    const res = await fetch(rt.intakeUrl);
    expect(res.status).toBe(405);
  });

  it('with Redis unreachable the delivery is still acknowledged and stored; the relay queues it later', async () => {
    const deadPort = await freePort();
    const deadQueues = new Queues({ redis: `redis://127.0.0.1:${deadPort}`, prefix: rt.queues.prefix });
    const liveQueues = rt.services.queues;
    rt.services.queues = deadQueues;
    let id: number;
    try {
      const t0 = Date.now();
      const res = await postSigned(rt, JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'redis-down' }));
      expect(res.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(5000); // answered, not hung (timing itself is measured in bench/)
      ({ id } = (await res.json()) as { id: number });
      expect(await lastRow()).toMatchObject({ id, status: 'received', enqueuedAt: null });
    } finally {
      rt.services.queues = liveQueues;
      await deadQueues.close();
    }
    // Redis is back: the relay finds the stored row and queues it exactly once.
    await waitFor(
      async () =>
        (await relayInbox({ db: rt.db, enqueue: rt.queues })) >= 0 &&
        (await rt.db.selectFrom('webhookInbox').select('enqueuedAt').where('id', '=', id).executeTakeFirst())?.enqueuedAt,
      { timeoutMs: 8000, intervalMs: 500, what: 'relay' },
    );
    const job = await rt.queues.queue('webhooks').getJob(`wh-${id}`);
    expect(job?.data).toEqual({ inboxId: id });
  });
});

describe('duplicate detection follows the customer journey', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('a customer who retries right after a rejection is not mistaken for a duplicate', async () => {
    const { user, link } = await onboard(rt, 'quick-retry@example.mx');
    await fetch(link.url, { method: 'POST', body: new URLSearchParams({ outcome: 'REJECTED' }), redirect: 'manual' });
    await waitFor(async () => (await findUserById(rt.db, user.id))?.kycState === 'REJECTED', { what: 'first rejection' });
    // A new link at once, then the customer passes: the same CREATED_KYC body within minutes.
    const { generateLink } = await import('../../jobs/definitions/generate-link.js');
    await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID() });
    const second = await waitFor(
      async () => {
        const l = await rt.db
          .selectFrom('kycLinks')
          .selectAll()
          .where('userId', '=', user.id)
          .where('status', '=', 'active')
          .executeTakeFirst();
        return l && l.id !== link.id ? l : null;
      },
      { what: 'second link' },
    );
    await fetch(second.url, { method: 'POST', body: new URLSearchParams({ outcome: 'VERIFIED' }), redirect: 'manual' });
    await waitFor(async () => (await findUserById(rt.db, user.id))?.kycState === 'VERIFIED', { what: 'verified after retry' });
    const created = await rt.db
      .selectFrom('webhookInbox')
      .selectAll()
      .where('externalUserId', '=', user.externalUserId)
      .where('eventName', '=', 'CREATED_KYC')
      .orderBy('id')
      .execute();
    expect(created.length).toBe(2);
    expect(created[1].duplicateOf).toBeNull();
    // Processed, not dropped. After a re-invitation it could also be the first attempt's late retry,
    // so Capa is asked: its verification is newer than the new link, and its truth is applied.
    expect(created[1].effect).toBe('conflict_check');
    const hist = await stateHistory(rt.db, user.id);
    expect(hist.map((h) => h.toState)).toEqual(['LINK_ISSUED', 'IN_PROGRESS', 'REJECTED', 'LINK_ISSUED', 'VERIFIED']);
    expect(hist.at(-1)).toMatchObject({ causeType: 'poll' });
  });
});
