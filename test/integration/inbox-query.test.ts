import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { settleDelivery } from '../../db/repositories/inbox.js';
import { deliveryContext, inboxCounts, inboxEventNames, listInbox } from '../../db/repositories/inbox-query.js';
import { applySignal, insertUser } from '../../db/repositories/users.js';
import type { Enqueuer } from '../../jobs/types.js';
import { receiveWebhook } from '../../app/webhook-intake.server.js';
import { createTestDb, postgresAvailable, type TestDb } from '../support/runtime.js';

/**
 * The webhook inbox queries behind /webhooks, /webhooks/:id and /metrics on both engines, over
 * deliveries stored by the real intake (signature check, duplicate detection).
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

const SECRET = 'inbox-query-secret';
const noQueue: Enqueuer = {
  add: async () => {
    throw new Error('Redis is not part of this test');
  },
} as unknown as Enqueuer;

for (const kind of kinds) {
  describe(`inbox queries on ${kind}`, () => {
    let t: TestDb;
    const ids: Record<string, number> = {};
    let anaId = '';

    async function deliver(name: string, body: unknown, signature?: string): Promise<number> {
      const raw = Buffer.from(JSON.stringify(body));
      const headers = new Headers({ 'content-type': 'application/json' });
      if (signature !== '') headers.set('capa-signature', signature ?? signBody(raw, SECRET));
      const r = await receiveWebhook(raw, headers, { db: t.db, enqueue: noQueue, secrets: [SECRET] });
      ids[name] = r.body.id!;
      return r.body.id!;
    }

    beforeAll(async () => {
      t = await createTestDb(kind);
      const ana = await insertUser(t.db, { email: 'ana@inbox.mx', externalUserId: 'ana-1', type: 'INDIVIDUAL' });
      anaId = ana.id;
      await t.db.transaction().execute((trx) => applySignal(trx, ana.id, { kind: 'LINK_ISSUED' }, { type: 'operator', id: 'op' }));
      await deliver('anaCreated', { type: 'KYC', event: 'CREATED_KYC', externalUserId: 'ana-1' });
      await deliver('anaCreatedAgain', { type: 'KYC', event: 'CREATED_KYC', externalUserId: 'ana-1' });
      await deliver('anaVerified', { type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'ana-1' });
      await deliver('stranger', { type: 'KYC', event: 'REJECTED_KYC', externalUserId: 'nobody-9' });
      await deliver('forged', { type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'ana-1' }, 'ab'.repeat(32));
      await deliver('unsigned', { type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'ana-1' }, '');
      await deliver('other', { type: 'PAYMENT', event: 'SETTLED', externalUserId: 'ana-1' });
      // What the worker would record: CREATED_KYC moved Ana on; VERIFIED_USER failed once.
      const o = await t.db
        .transaction()
        .execute((trx) =>
          applySignal(trx, ana.id, { kind: 'WEBHOOK', event: 'CREATED_KYC' }, { type: 'webhook', id: String(ids.anaCreated) }),
        );
      await settleDelivery(t.db, ids.anaCreated!, {
        status: 'processed',
        userId: ana.id,
        stateFrom: o.from,
        stateTo: o.to,
        effect: 'apply',
        attempts: 1,
      });
      await settleDelivery(t.db, ids.anaVerified!, { status: 'failed', userId: ana.id, error: 'boom', attempts: 8 });
      await settleDelivery(t.db, ids.stranger!, {
        status: 'ignored',
        effect: 'unknown_user',
        error: 'no customer with externalUserId nobody-9',
        attempts: 1,
      });
    });
    afterAll(async () => {
      await t?.close();
    });

    const idsOf = async (q: Parameters<typeof listInbox>[1]) => (await listInbox(t.db, q)).rows.map((r) => r.id);

    it('filters by customer (externalUserId or our user id), event, verdict and status', async () => {
      expect(await idsOf({ customer: 'ana-1', verdict: 'valid', sort: 'id', dir: 'asc' })).toEqual([
        ids.anaCreated,
        ids.anaCreatedAgain,
        ids.anaVerified,
        ids.other,
      ]);
      expect(await idsOf({ customer: anaId })).toEqual([ids.anaVerified, ids.anaCreated]);
      expect(await idsOf({ event: 'REJECTED_KYC' })).toEqual([ids.stranger]);
      expect(await idsOf({ verdict: 'mismatch' })).toEqual([ids.forged]);
      expect(await idsOf({ verdict: 'missing' })).toEqual([ids.unsigned]);
      expect(await idsOf({ status: 'failed' })).toEqual([ids.anaVerified]);
      expect(await idsOf({ status: 'rejected', dir: 'asc' })).toEqual([ids.forged, ids.unsigned]);
    });

    it('tells duplicates, state changes and errors apart', async () => {
      expect(await idsOf({ duplicate: 'duplicate' })).toEqual([ids.anaCreatedAgain]);
      expect(await idsOf({ duplicate: 'new', customer: 'ana-1', verdict: 'valid', dir: 'asc' })).toEqual([
        ids.anaCreated,
        ids.anaVerified,
        ids.other,
      ]);
      expect(await idsOf({ changedOnly: true })).toEqual([ids.anaCreated]);
      expect(await idsOf({ errorsOnly: true, dir: 'asc' })).toEqual([ids.anaVerified, ids.stranger, ids.forged, ids.unsigned, ids.other]);
    });

    it('sorts with id as tie-breaker, pages, links rows to the customer and bounds by time', async () => {
      const byEvent = await listInbox(t.db, { sort: 'eventName', dir: 'asc', verdict: 'valid' });
      expect(byEvent.rows.map((r) => r.eventName)).toEqual(['CREATED_KYC', 'CREATED_KYC', 'REJECTED_KYC', 'SETTLED', 'VERIFIED_USER']);
      expect(byEvent.rows[0]!.id).toBeLessThan(byEvent.rows[1]!.id);
      // Not yet settled, but the customer is found through the externalUserId.
      expect(byEvent.rows.find((r) => r.id === ids.anaCreatedAgain)!.userId).toBe(anaId);
      expect(byEvent.rows.find((r) => r.id === ids.stranger)!.userId).toBeNull();
      const p2 = await listInbox(t.db, { pageSize: 3, page: 2, dir: 'asc' });
      expect([p2.total, p2.pageCount, p2.page, p2.rows.length]).toEqual([7, 3, 2, 3]);
      expect(p2.rows.map((r) => r.id)).toEqual([ids.stranger, ids.forged, ids.unsigned]);
      expect((await listInbox(t.db, { pageSize: 3, page: 99 })).page).toBe(3);
      expect((await listInbox(t.db, { receivedTo: '2000-01-01T00:00:00.000Z' })).total).toBe(0);
      expect((await listInbox(t.db, { receivedFrom: '2000-01-01T00:00:00.000Z' })).total).toBe(7);
    });

    it('gives a delivery its context, and counts for /metrics', async () => {
      const original = await t.db.selectFrom('webhookInbox').selectAll().where('id', '=', ids.anaCreated!).executeTakeFirstOrThrow();
      const ctx = await deliveryContext(t.db, original);
      expect(ctx.duplicates.map((d) => d.id)).toEqual([ids.anaCreatedAgain]);
      expect(ctx.stateChanges.map((s) => `${s.fromState}>${s.toState}`)).toEqual(['LINK_ISSUED>IN_PROGRESS']);
      expect(ctx.customer).toMatchObject({ id: anaId, kycState: 'IN_PROGRESS' });
      const dup = await t.db.selectFrom('webhookInbox').selectAll().where('id', '=', ids.anaCreatedAgain!).executeTakeFirstOrThrow();
      expect((await deliveryContext(t.db, dup)).original?.id).toBe(ids.anaCreated);
      const counts = await inboxCounts(t.db);
      expect(counts.byVerdict).toEqual({ valid: 5, missing: 1, malformed: 0, mismatch: 1 });
      expect(counts.byStatus).toEqual({ received: 0, processed: 1, ignored: 3, rejected: 2, failed: 1 });
      expect(await inboxEventNames(t.db)).toEqual(['CREATED_KYC', 'REJECTED_KYC', 'SETTLED', 'VERIFIED_USER']);
    });
  });
}
