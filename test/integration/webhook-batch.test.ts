import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertDelivery } from '../../db/repositories/inbox.js';
import { findUserById, insertUser, stateHistory } from '../../db/repositories/users.js';
import { processWebhook } from '../../jobs/definitions/process-webhook.js';
import { createTestRuntime, postgresAvailable, waitFor, type TestRuntime } from '../support/runtime.js';

const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

/**
 * The worker applies the deliveries it takes together in one batch (jobs/handlers/
 * process-webhook.handler.ts). Whatever lands in one batch, each delivery must end exactly as if
 * it had been processed alone: a customer's second delivery sees the first one's outcome, and a
 * delivery the database refuses fails alone and is retried, while the others commit.
 */
for (const kind of kinds) {
  describe(`deliveries processed together (${kind})`, () => {
    let rt: TestRuntime;
    beforeAll(async () => {
      rt = await createTestRuntime({ dbKind: kind, worker: false });
    });
    afterAll(async () => {
      await rt?.close();
    });

    async function delivery(event: string, externalUserId: string | null, type = 'KYC'): Promise<number> {
      return insertDelivery(rt.db, {
        receivedAt: new Date().toISOString(),
        rawBody: JSON.stringify({ type, event, externalUserId }),
        headers: '{}',
        signatureVerdict: 'valid',
        secretIndex: 0,
        eventType: type,
        eventName: event,
        externalUserId,
        dedupeKey: null,
        duplicateOf: null,
        status: 'received',
      });
    }

    it('each delivery ends as if processed alone; one the database refuses fails alone and succeeds on retry', async () => {
      const a = await insertUser(rt.db, { email: `batch-a-${kind}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
      const b = await insertUser(rt.db, { email: `batch-b-${kind}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
      const c = await insertUser(rt.db, { email: `batch-c-${kind}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
      // The database refuses any state change of customer b until the trigger is dropped.
      if (kind === 'sqlite') {
        await sql`create trigger refuse_b before update of kyc_state on users when new.id = ${sql.lit(b.id)}
          begin select raise(abort, 'refused by the test'); end`.execute(rt.db);
      } else {
        await sql`create function refuse_b() returns trigger language plpgsql as $$
          begin if new.id = ${sql.lit(b.id)} and new.kyc_state <> old.kyc_state then raise exception 'refused by the test'; end if; return new; end $$`.execute(
          rt.db,
        );
        await sql`create trigger refuse_b before update on users for each row execute function refuse_b()`.execute(rt.db);
      }
      const ids = {
        aCreated: await delivery('CREATED_KYC', a.externalUserId),
        aReview: await delivery('REVIEW_NEEDED_KYC', a.externalUserId),
        bCreated: await delivery('CREATED_KYC', b.externalUserId),
        cCreated: await delivery('CREATED_KYC', c.externalUserId),
        unknown: await delivery('CREATED_KYC', 'nobody-we-know'),
        transaction: await delivery('COMPLETED', a.externalUserId, 'TRANSACTION'),
      };
      // All queued before the worker starts, so it takes them together.
      await rt.queues.queue('webhooks').addBulk(
        Object.values(ids).map((id) => ({
          name: processWebhook.name,
          data: { inboxId: id },
          opts: { ...processWebhook.options, jobId: processWebhook.jobId!({ inboxId: id }), backoff: { type: 'fixed', delay: 300 } },
        })),
      );
      await rt.startWorkers({ queues: ['webhooks'], schedules: false });

      const row = (id: number) => rt.db.selectFrom('webhookInbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      await waitFor(async () => (await row(ids.aReview)).status === 'processed' && (await row(ids.cCreated)).status === 'processed', {
        what: 'the deliveries of a and c processed',
      });
      // a's second delivery saw the first one's outcome.
      expect((await stateHistory(rt.db, a.id)).map((h) => `${h.fromState}→${h.toState}`)).toEqual([
        'NOT_STARTED→IN_PROGRESS',
        'IN_PROGRESS→REVIEW_NEEDED',
      ]);
      expect(await row(ids.aCreated)).toMatchObject({
        status: 'processed',
        stateFrom: 'NOT_STARTED',
        stateTo: 'IN_PROGRESS',
        effect: 'apply',
      });
      expect(await row(ids.aReview)).toMatchObject({
        status: 'processed',
        stateFrom: 'IN_PROGRESS',
        stateTo: 'REVIEW_NEEDED',
        effect: 'apply',
      });
      expect(await row(ids.cCreated)).toMatchObject({ status: 'processed', userId: c.id, stateTo: 'IN_PROGRESS', attempts: 1 });
      expect((await findUserById(rt.db, c.id))?.kycState).toBe('IN_PROGRESS');
      expect(await row(ids.unknown)).toMatchObject({ status: 'ignored', effect: 'unknown_user', userId: null });
      expect(await row(ids.transaction)).toMatchObject({ status: 'ignored', effect: 'not_kyc' });

      // b was refused: nothing of it was written, and its job is retried.
      await waitFor(async () => (await rt.queues.queue('webhooks').getJob(`wh-${ids.bCreated}`))?.attemptsMade, { what: 'b failed once' });
      expect(await row(ids.bCreated)).toMatchObject({ status: 'received', stateTo: null });
      expect((await findUserById(rt.db, b.id))?.kycState).toBe('NOT_STARTED');
      expect(await stateHistory(rt.db, b.id)).toEqual([]);

      if (kind === 'sqlite') await sql`drop trigger refuse_b`.execute(rt.db);
      else await sql`drop trigger refuse_b on users`.execute(rt.db);
      await waitFor(async () => (await row(ids.bCreated)).status === 'processed', { what: 'b processed on a retry' });
      expect((await row(ids.bCreated)).attempts).toBeGreaterThan(1);
      expect((await findUserById(rt.db, b.id))?.kycState).toBe('IN_PROGRESS');
      expect((await stateHistory(rt.db, b.id)).map((h) => `${h.fromState}→${h.toState}`)).toEqual(['NOT_STARTED→IN_PROGRESS']);
      // Nothing was applied twice.
      expect(await stateHistory(rt.db, a.id)).toHaveLength(2);
      expect(await stateHistory(rt.db, c.id)).toHaveLength(1);
    });
  });
}
