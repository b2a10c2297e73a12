import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindOf } from '../../db/client.js';
import { appendAudit, verifyAuditChain } from '../../db/repositories/audit.js';
import { latestDetails, insertDetailsSnapshot } from '../../db/repositories/details.js';
import { claim, reopen, settle } from '../../db/repositories/idempotency.js';
import { findOriginal, findUnqueued, insertDelivery, markEnqueued } from '../../db/repositories/inbox.js';
import { insertLink, linksForUser } from '../../db/repositories/links.js';
import { applySignal, findUserByEmail, insertUser, stateHistory } from '../../db/repositories/users.js';
import { parseDataKeys } from '../../db/encryption.js';
import { createTestDb, postgresAvailable, type TestDb } from '../support/runtime.js';

const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

for (const kind of kinds) {
  describe(`repositories on ${kind}`, () => {
    let t: TestDb;
    beforeAll(async () => {
      t = await createTestDb(kind);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('opens the requested engine', () => {
      expect(kindOf(t.db)).toBe(kind);
    });

    it('users: unique externalUserId and case-insensitive unique email', async () => {
      const u = await insertUser(t.db, { email: 'Ana@Example.MX', type: 'INDIVIDUAL', alias: 'Ana' });
      expect(u.externalUserId).toMatch(/^kyc-[0-9a-f]{12}$/);
      expect((await findUserByEmail(t.db, 'ana@example.mx'))?.id).toBe(u.id);
      await expect(insertUser(t.db, { email: 'ana@example.mx', type: 'INDIVIDUAL' })).rejects.toThrow();
      await expect(insertUser(t.db, { email: 'other@example.mx', type: 'INDIVIDUAL', externalUserId: u.externalUserId })).rejects.toThrow();
    });

    it('applySignal moves state, records the cause, and ignores a late CREATED_KYC', async () => {
      const u = await insertUser(t.db, { email: 'sig@example.mx', type: 'INDIVIDUAL' });
      const o1 = await t.db
        .transaction()
        .execute((trx) => applySignal(trx, u.id, { kind: 'LINK_ISSUED' }, { type: 'operator', id: 'op1' }));
      expect(o1).toMatchObject({ from: 'NOT_STARTED', to: 'LINK_ISSUED', changed: true });
      await t.db
        .transaction()
        .execute((trx) => applySignal(trx, u.id, { kind: 'WEBHOOK', event: 'VERIFIED_USER' }, { type: 'webhook', id: '7' }));
      const late = await t.db
        .transaction()
        .execute((trx) => applySignal(trx, u.id, { kind: 'WEBHOOK', event: 'CREATED_KYC' }, { type: 'webhook', id: '8' }));
      expect(late).toMatchObject({ changed: false, to: 'VERIFIED', decision: { effect: 'stale' } });
      const hist = await stateHistory(t.db, u.id);
      expect(hist.map((h) => `${h.fromState}>${h.toState}:${h.causeType}:${h.causeId}`)).toEqual([
        'NOT_STARTED>LINK_ISSUED:operator:op1',
        'LINK_ISSUED>VERIFIED:webhook:7',
      ]);
      const row = await t.db.selectFrom('users').selectAll().where('id', '=', u.id).executeTakeFirstOrThrow();
      expect(row.kycStateCause).toBe('webhook:7');
    });

    it('a poll that changes the state is recorded as drift and confirms the state', async () => {
      const u = await insertUser(t.db, { email: 'poll@example.mx', type: 'INDIVIDUAL' });
      const o = await t.db
        .transaction()
        .execute((trx) => applySignal(trx, u.id, { kind: 'POLLED', state: 'REJECTED' }, { type: 'poll', id: 'j1' }));
      expect(o).toMatchObject({ changed: true, drift: true, to: 'REJECTED' });
      const row = await t.db.selectFrom('users').select(['capaConfirmedAt']).where('id', '=', u.id).executeTakeFirstOrThrow();
      expect(row.capaConfirmedAt).not.toBeNull();
      expect((await stateHistory(t.db, u.id))[0].drift).toBe(1);
    });

    it('links: a new link supersedes the active one', async () => {
      const u = await insertUser(t.db, { email: 'link@example.mx', type: 'INDIVIDUAL' });
      await t.db
        .transaction()
        .execute((trx) => insertLink(trx, { userId: u.id, url: 'https://k/1', country: 'MX', redirectUri: null, createdBy: null }));
      await t.db
        .transaction()
        .execute((trx) => insertLink(trx, { userId: u.id, url: 'https://k/2', country: 'DO', redirectUri: null, createdBy: null }));
      const links = await linksForUser(t.db, u.id);
      expect(links.map((l) => `${l.url}:${l.status}`).sort()).toEqual(['https://k/1:superseded', 'https://k/2:active']);
    });

    it('details are encrypted at rest with the key id stored, and read back', async () => {
      const u = await insertUser(t.db, { email: 'det@example.mx', type: 'INDIVIDUAL' });
      const keys = parseDataKeys(`k2026:${'ab'.repeat(32)}`);
      await insertDetailsSnapshot(
        t.db,
        {
          userId: u.id,
          details: { idInfo: { idNumber: 'SECRET-123' } },
          verificationResult: 'VERIFIED',
          mappedState: 'VERIFIED',
          cause: null,
        },
        keys,
      );
      const raw = await t.db.selectFrom('kycDetails').select(['payload', 'keyId']).where('userId', '=', u.id).executeTakeFirstOrThrow();
      expect(raw.keyId).toBe('k2026');
      expect(raw.payload).not.toContain('SECRET-123');
      const back = await latestDetails<{ idInfo: { idNumber: string } }>(t.db, u.id, keys);
      expect(back?.details.idInfo.idNumber).toBe('SECRET-123');
      await expect(latestDetails(t.db, u.id, parseDataKeys(`other:${'cd'.repeat(32)}`))).rejects.toThrow(/no key/);
    });

    it('idempotency: a claimed side effect is seen by the second claim; failed can be reopened', async () => {
      expect(await claim(t.db, 'k:1', 'test')).toEqual({ fresh: true });
      expect(await claim(t.db, 'k:1', 'test')).toMatchObject({ fresh: false, status: 'started' });
      await settle(t.db, 'k:1', 'done', { userId: 'u1' });
      expect(await claim(t.db, 'k:1', 'test')).toEqual({ fresh: false, status: 'done', result: { userId: 'u1' } });
      expect(await reopen(t.db, 'k:1')).toBe(false);
    });

    it('inbox: duplicates are found inside the window; the relay finds unqueued rows', async () => {
      const base = {
        rawBody: '{}',
        headers: '{}',
        signatureVerdict: 'valid' as const,
        secretIndex: 0,
        eventType: 'KYC',
        eventName: 'VERIFIED_USER',
        externalUserId: 'x',
        duplicateOf: null,
        status: 'received' as const,
      };
      const old = new Date(Date.now() - 60_000).toISOString();
      const id1 = await insertDelivery(t.db, { ...base, receivedAt: old, dedupeKey: 'dk1' });
      expect(await findOriginal(t.db, 'dk1', new Date().toISOString())).toBe(id1);
      expect(await findOriginal(t.db, 'dk1', new Date(Date.now() + 3600_000).toISOString())).toBeNull();
      expect(await findUnqueued(t.db, { staleQueuedMs: 600_000, minAgeMs: 1000, limit: 10 })).toContain(id1);
      await markEnqueued(t.db, [id1]);
      expect(await findUnqueued(t.db, { staleQueuedMs: 600_000, minAgeMs: 1000, limit: 10 })).not.toContain(id1);
    });

    it('audit log: hash chain verifies; UPDATE and DELETE are refused by the database', async () => {
      for (let i = 0; i < 5; i++)
        await appendAudit(t.db, {
          actor: 'operator:o1',
          operatorId: 'o1',
          action: 'test.action',
          targetType: 'user',
          targetId: `u${i}`,
          outcome: 'ok',
          detail: { i },
        });
      expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, rows: 5 });
      await expect(sql`update audit_log set action = 'tampered'`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`delete from audit_log where target_id = 'u2'`.execute(t.db)).rejects.toThrow(/append-only/);
      // Concurrent appends never fork the chain.
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => appendAudit(t.db, { actor: 'system', action: 'race', outcome: 'ok', detail: { i } })),
      );
      expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, rows: 15 });
    });
  });
}
