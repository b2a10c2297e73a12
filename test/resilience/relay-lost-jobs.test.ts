import { randomUUID } from 'node:crypto';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { insertUser } from '../../db/repositories/users.js';
import { isoAgo } from '../../lib/time.js';
import { relayInbox, QUEUED_RECHECK_MS } from '../../jobs/handlers/relay-inbox.handler.js';
import { redisConnection } from '../../lib/redis.js';
import { SCHEDULES } from '../../jobs/registry.js';
import { createTestRuntime, waitFor, WEBHOOK_SECRET, type TestRuntime } from '../support/runtime.js';

/**
 * The relay's promise: every delivery still `received` ends up with a job that will run, however
 * its earlier job was lost. Each way of losing one is produced with real BullMQ calls against the
 * test's Redis — no process is killed here (test/resilience/worker-kill-rounds.test.ts does that).
 */
describe('relay: queued deliveries whose jobs were lost', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
  });
  afterAll(async () => {
    await rt?.close();
  });

  const webhooks = () => rt.queues.queue('webhooks');

  /** A delivery acknowledged by the real intake, with its job in Redis. */
  async function deliver(): Promise<number> {
    const u = await insertUser(rt.db, { email: `lost-${randomUUID()}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
    const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId });
    const res = await fetch(rt.intakeUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, WEBHOOK_SECRET) },
      body,
    });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: number };
    // The intake adds after answering.
    await waitFor(() => webhooks().getJob(`wh-${id}`), { what: `job of delivery ${id}` });
    return id;
  }

  /** Takes the next waiting job the way a worker does, without running our handler. */
  async function takeNext(expectedId: number) {
    const conn = redisConnection(rt.env.REDIS_URL, 'worker');
    const w = new Worker('webhooks', null, { connection: conn, prefix: rt.queues.prefix, autorun: false });
    const token = randomUUID();
    const job = await w.getNextJob(token);
    expect(job?.id).toBe(`wh-${expectedId}`);
    return {
      job: job!,
      token,
      close: async () => {
        await w.close();
        conn.disconnect();
      },
    };
  }

  it('re-queues jobs failed by BullMQ, completed without effect or gone from Redis; leaves waiting ones alone', async () => {
    // Failed by BullMQ itself: what its stalled-job check does to a job caught in two worker
    // crashes ("job stalled more than allowable limit"). Our handler and onFinalFailure never run.
    const failedId = await deliver();
    const a = await takeNext(failedId);
    await a.job.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), a.token);
    await a.close();
    // Completed by a run whose write never reached the database.
    const completedId = await deliver();
    const b = await takeNext(completedId);
    await b.job.moveToCompleted({ skipped: 'test' }, b.token, false);
    await b.close();
    // Gone: Redis restarted without its data, a failover to a lagging replica.
    const goneId = await deliver();
    await webhooks().remove(`wh-${goneId}`);
    // Still waiting for a worker: nothing to do.
    const waitingId = await deliver();
    const waitingJob = await webhooks().getJob(`wh-${waitingId}`);

    expect(await (await webhooks().getJob(`wh-${failedId}`))!.getState()).toBe('failed');
    expect(await (await webhooks().getJob(`wh-${completedId}`))!.getState()).toBe('completed');
    expect(await webhooks().getJob(`wh-${goneId}`)).toBeUndefined();

    // As the relay left them on an earlier pass: queued, a while ago.
    const ids = [failedId, completedId, goneId, waitingId];
    await rt.db
      .updateTable('webhookInbox')
      .set({ enqueuedAt: isoAgo(QUEUED_RECHECK_MS + 5_000) })
      .where('id', 'in', ids)
      .execute();

    expect(await relayInbox({ db: rt.db, enqueue: rt.queues })).toBe(3);
    for (const id of [failedId, completedId, goneId]) {
      expect(await (await webhooks().getJob(`wh-${id}`))!.getState()).toBe('waiting');
    }
    const stillWaiting = await webhooks().getJob(`wh-${waitingId}`);
    expect(stillWaiting?.timestamp).toBe(waitingJob?.timestamp); // the same job, untouched
    // Checked now: the next look is one period later, not at every relay run.
    const marked = await rt.db.selectFrom('webhookInbox').select(['id', 'enqueuedAt']).where('id', 'in', ids).execute();
    for (const m of marked) expect(Date.parse(m.enqueuedAt!)).toBeGreaterThan(Date.now() - 10_000);
    expect(await relayInbox({ db: rt.db, enqueue: rt.queues })).toBe(0);

    // A worker runs all four, each once.
    await rt.startWorkers({ schedules: false });
    await waitFor(
      async () =>
        (await rt.db.selectFrom('webhookInbox').select('id').where('id', 'in', ids).where('status', '=', 'processed').execute()).length ===
        4,
      { what: 'all four processed' },
    );
    const changes = await rt.db
      .selectFrom('stateChanges')
      .select('causeId')
      .where('causeType', '=', 'webhook')
      .where('causeId', 'in', ids.map(String))
      .execute();
    expect(changes.map((c) => Number(c.causeId)).sort((x, y) => x - y)).toEqual([...ids].sort((x, y) => x - y));
    await rt.workers!.close();
    rt.workers = null;
  });

  it('a worker re-creates its job schedulers when they vanish from Redis, and a scheduler whose next run is gone', async () => {
    const running = await rt.startWorkers({ scheduleWatchdogMs: 300 });
    try {
      const q = (name: (typeof SCHEDULES)[number]['queue']) => rt.queues.queue(name);
      for (const s of SCHEDULES) expect(await q(s.queue).getJobScheduler(s.id), s.id).toBeTruthy();

      // FLUSHALL, for this test's keys only (the test Redis is shared).
      const conn = rt.queues.connection;
      let cursor = '0';
      do {
        const [next, keys] = await conn.scan(cursor, 'MATCH', `${rt.queues.prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await conn.del(...keys);
      } while (cursor !== '0');
      expect(await q('maintenance').getJobScheduler('relay-inbox')).toBeUndefined();
      await waitFor(
        async () => {
          for (const s of SCHEDULES) if (!(await q(s.queue).getJobScheduler(s.id))) return false;
          return true;
        },
        { what: 'every scheduler created again' },
      );

      // The scheduler is there but its next run was lost (BullMQ creates it when the current run
      // starts; a Redis error at that moment, or a replica that lagged, leaves none): it would
      // never fire again. BullMQ refuses to remove a scheduler's job, so its keys go directly.
      const relay = await q('maintenance').getJobScheduler('relay-inbox');
      const lost = `repeat:relay-inbox:${relay!.next}`;
      const key = (k: string) => `${rt.queues.prefix}:maintenance:${k}`;
      await conn.multi().zrem(key('delayed'), lost).lrem(key('wait'), 0, lost).zrem(key('prioritized'), lost).del(key(lost)).exec();
      expect(await q('maintenance').getJob(lost)).toBeUndefined();
      await waitFor(
        async () => {
          const s = await q('maintenance').getJobScheduler('relay-inbox');
          return s?.next != null && (await q('maintenance').getJob(`repeat:relay-inbox:${s.next}`));
        },
        { what: 'relay-inbox next run restored' },
      );
      // One schedule per id, however often it was repaired.
      const ids = (await q('maintenance').getJobSchedulers()).map((s) => s.key);
      expect(ids.filter((k) => k === 'relay-inbox').length).toBe(1);
    } finally {
      await running.close();
      rt.workers = null;
    }
  });
});
