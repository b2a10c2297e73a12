import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countDriftSince, driftCountsPerDay, listDrift } from '../../db/repositories/drift.js';
import { insertLink } from '../../db/repositories/links.js';
import { countStale, findStaleUsers, getRun, runProgress, thresholdsFromEnv } from '../../db/repositories/refresh.js';
import { applySignal, findUserById, insertUser, markCapaCreated } from '../../db/repositories/users.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { Worker } from 'bullmq';
import { expireLinksJob } from '../../jobs/definitions/expire-links.js';
import { fetchDetails } from '../../jobs/definitions/fetch-details.js';
import { redisConnection } from '../../lib/redis.js';
import { refreshScan } from '../../jobs/definitions/refresh-scan.js';
import { startWorkers, type RunningWorkers } from '../../jobs/worker.js';
import { resetEnvCache } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { createTestRuntime, postgresAvailable, waitFor, type TestRuntime } from '../support/runtime.js';

describe('the refresh schedule: one schedule however many workers', () => {
  let rt: TestRuntime;
  const extra: RunningWorkers[] = [];
  beforeAll(async () => {
    // The schedule's cadence is read from the process environment when a worker upserts it.
    process.env.REFRESH_SCAN_EVERY_SECONDS = '1';
    resetEnvCache();
    rt = await createTestRuntime({ worker: false });
  });
  afterAll(async () => {
    for (const w of extra) await w.close(3000);
    await rt?.close();
    delete process.env.REFRESH_SCAN_EVERY_SECONDS;
    resetEnvCache();
  });

  it('two worker processes on one prefix run each refresh cycle exactly once', { timeout: 60_000 }, async () => {
    const deps = {
      env: rt.env,
      db: rt.db,
      capa: rt.capa,
      logger,
      dataKeys: rt.services.dataKeys,
      redis: rt.env.redis,
      prefix: rt.queues.prefix,
    };
    const started = Date.now();
    extra.push(await startWorkers(deps, { queues: ['maintenance'] }));
    extra.push(await startWorkers(deps, { queues: ['maintenance'] }));

    const schedulers = await rt.queues.queue('maintenance').getJobSchedulers();
    expect(schedulers.filter((s) => s.key === 'refresh-scan' || s.id === 'refresh-scan')).toHaveLength(1);
    expect(schedulers.find((s) => s.key === 'refresh-scan' || s.id === 'refresh-scan')?.every).toBe(1000);

    const scans = () =>
      rt.db.selectFrom('jobRuns').select(['jobId', 'status', 'startedAt']).where('jobName', '=', 'refresh-scan').orderBy('id').execute();
    await waitFor(async () => (await scans()).filter((r) => r.status === 'completed').length >= 5, {
      timeoutMs: 30_000,
      what: 'five refresh cycles',
    });
    const elapsed = Date.now() - started;
    const rows = await scans();
    const ids = rows.map((r) => r.jobId);
    // Each cycle is one job, run by one of the two workers.
    expect(new Set(ids).size).toBe(ids.length);
    const slots = ids.map((id) => Number(/(\d{13})$/.exec(id)?.[1])).sort((a, b) => a - b);
    expect(slots.every(Number.isFinite)).toBe(true);
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(1000);
    // Two schedules would have produced about twice as many cycles.
    expect(rows.length).toBeLessThanOrEqual(Math.ceil(elapsed / 1000) + 2);
  });
});

describe('link expiry', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false, env: { KYC_LINK_LIFETIME_HOURS: '24' } });
    await rt.startWorkers({ queues: ['maintenance'], schedules: false });
  });
  afterAll(async () => {
    await rt?.close();
  });

  async function customerWithLink(email: string, ageHours: number, state: 'LINK_ISSUED' | 'IN_PROGRESS' = 'LINK_ISSUED') {
    const u = await insertUser(rt.db, { email, type: 'INDIVIDUAL', country: 'MX' });
    await markCapaCreated(rt.db, u.id, randomUUID());
    const link = await rt.db.transaction().execute(async (trx) => {
      const l = await insertLink(trx, {
        userId: u.id,
        url: `https://kyc.example/${u.id}`,
        country: 'MX',
        redirectUri: null,
        createdBy: null,
      });
      await applySignal(trx, u.id, { kind: 'LINK_ISSUED' }, { type: 'job', id: 'test', reason: 'link generated' });
      if (state === 'IN_PROGRESS') await applySignal(trx, u.id, { kind: 'WEBHOOK', event: 'CREATED_KYC' }, { type: 'webhook', id: 'test' });
      return l;
    });
    await rt.db
      .updateTable('kycLinks')
      .set({ createdAt: new Date(Date.now() - ageHours * 3_600_000).toISOString() })
      .where('id', '=', link.id)
      .execute();
    return { user: u, link };
  }

  it(
    'old active links are expired and customers who have not started are flagged, without a state change',
    { timeout: 30_000 },
    async () => {
      const old = await customerWithLink('old@example.mx', 30);
      const fresh = await customerWithLink('fresh@example.mx', 2);
      const started = await customerWithLink('started@example.mx', 30, 'IN_PROGRESS');
      const historyBefore = await rt.db
        .selectFrom('stateChanges')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();

      await rt.queues.add(expireLinksJob, {});
      await waitFor(
        () =>
          rt.db
            .selectFrom('jobRuns')
            .select('result')
            .where('jobName', '=', 'expire-links')
            .where('status', '=', 'completed')
            .executeTakeFirst(),
        { what: 'expire-links run' },
      );

      const link = (id: string) => rt.db.selectFrom('kycLinks').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(await link(old.link.id)).toMatchObject({ status: 'expired' });
      expect((await link(old.link.id)).endedAt).toBeTruthy();
      expect(await findUserById(rt.db, old.user.id)).toMatchObject({ linkExpired: 1, kycState: 'LINK_ISSUED' });
      expect(await link(fresh.link.id)).toMatchObject({ status: 'active' });
      expect(await findUserById(rt.db, fresh.user.id)).toMatchObject({ linkExpired: 0 });
      // A customer already verifying keeps its state and is not asked to start again.
      expect(await link(started.link.id)).toMatchObject({ status: 'expired' });
      expect(await findUserById(rt.db, started.user.id)).toMatchObject({ linkExpired: 0, kycState: 'IN_PROGRESS' });
      const historyAfter = await rt.db
        .selectFrom('stateChanges')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      expect(Number(historyAfter?.n)).toBe(Number(historyBefore?.n));

      // A second run finds nothing; a new link clears the flag.
      await rt.queues.add(expireLinksJob, {});
      await waitFor(
        async () =>
          (await rt.db.selectFrom('jobRuns').select('id').where('jobName', '=', 'expire-links').where('status', '=', 'completed').execute())
            .length === 2,
      );
      const second = await rt.db
        .selectFrom('jobRuns')
        .select('result')
        .where('jobName', '=', 'expire-links')
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow();
      expect(JSON.parse(second.result!)).toEqual({ linksExpired: 0, usersFlagged: 0 });
      await rt.db
        .transaction()
        .execute((trx) =>
          insertLink(trx, { userId: old.user.id, url: 'https://kyc.example/new', country: 'MX', redirectUri: null, createdBy: null }),
        );
      expect(await findUserById(rt.db, old.user.id)).toMatchObject({ linkExpired: 0 });
    },
  );
});

describe('a customer whose last fetch failed for good is asked again', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false, env: { REFRESH_STALE_LINK_ISSUED_MINUTES: '0' } });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('the failed details-<id> job no longer swallows the refresh', { timeout: 60_000 }, async () => {
    const u = await insertUser(rt.db, { email: 'failed-before@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    const capaUser = await rt.capa.createUser({ type: 'INDIVIDUAL', email: u.email, externalUserId: u.externalUserId });
    await markCapaCreated(rt.db, u.id, capaUser.userId);
    await rt.db
      .transaction()
      .execute((trx) => applySignal(trx, u.id, { kind: 'LINK_ISSUED' }, { type: 'job', id: 'test', reason: 'link generated' }));
    // Capa verified the customer; both webhooks were lost.
    rt.sandbox.setDelivery({ dropRate: 1 });
    rt.sandbox.setOutcome(capaUser.userId, 'VERIFIED');
    await rt.sandbox.flushDeliveries();
    rt.sandbox.setDelivery({ dropRate: 0 });
    // An earlier fetch failed for good and stays in BullMQ's failed set under the customer's id.
    await rt.queues.add(fetchDetails, { userId: u.id, cause: 'earlier' }, { attempts: 1 });
    const conn = redisConnection(rt.env.REDIS_URL, 'worker');
    const failing = new Worker(
      'capa',
      async () => {
        throw new Error('Capa was down');
      },
      { connection: conn, prefix: rt.queues.prefix },
    );
    await waitFor(async () => (await rt.queues.queue('capa').getJobState(`details-${u.id}`)) === 'failed', { what: 'failed details job' });
    await failing.close();
    conn.disconnect();

    // Without the unblocking, this add would be ignored (same job id) and the run would never settle.
    await rt.startWorkers({ schedules: false });
    await rt.queues.add(refreshScan, {});
    const run = await waitFor(
      async () => {
        const x = await rt.db.selectFrom('refreshRuns').selectAll().executeTakeFirst();
        return x?.status === 'done' ? x : null;
      },
      { timeoutMs: 30_000, what: 'cycle done' },
    );
    expect(run).toMatchObject({ total: 1, answered: 1, failed: 0, drift: 1 });
    expect(await findUserById(rt.db, u.id)).toMatchObject({ kycState: 'VERIFIED', kycStateCause: `poll:details-${u.id}` });
  });
});

describe('refresh on PostgreSQL', () => {
  let rt: TestRuntime | undefined;
  let pg = false;
  beforeAll(async () => {
    pg = await postgresAvailable();
    if (!pg) return;
    rt = await createTestRuntime({
      dbKind: 'postgres',
      worker: false,
      env: {
        REFRESH_STALE_LINK_ISSUED_MINUTES: '0',
        REFRESH_STALE_IN_PROGRESS_MINUTES: '0',
        REFRESH_STALE_REVIEW_NEEDED_MINUTES: '0',
        CAPA_RATE_LIMIT_PER_SEC: '500',
      },
    });
    await rt.startWorkers({ schedules: false });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('a cycle over dropped webhooks reconciles, counts and lists drift per day', { timeout: 120_000 }, async () => {
    expect(pg, 'PostgreSQL must answer at 127.0.0.1:5432').toBe(true);
    const r = rt!;
    const users = [];
    for (let i = 0; i < 20; i++) users.push(await insertUser(r.db, { email: `pg-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' }));
    await Promise.all(
      users.map((u) => r.queues.add(createCapaUser, { userId: u.id, sendLink: { country: 'MX', requestId: randomUUID() } })),
    );
    await waitFor(
      async () =>
        (await r.db.selectFrom('users').select('id').where('kycState', '=', 'LINK_ISSUED').where('capaUserId', 'is not', null).execute())
          .length === 20,
      { timeoutMs: 60_000 },
    );
    const withCapa = await r.db.selectFrom('users').selectAll().execute();
    r.sandbox.setDelivery({ dropRate: 1 });
    withCapa.slice(0, 10).forEach((u, i) => r.sandbox.setOutcome(u.capaUserId!, i % 2 ? 'VERIFIED' : 'REVIEW_NEEDED'));
    await r.sandbox.flushDeliveries();
    r.sandbox.setDelivery({ dropRate: 0 });

    const thresholds = thresholdsFromEnv(r.env);
    expect((await countStale(r.db, thresholds)).LINK_ISSUED).toBe(20);
    expect(await findStaleUsers(r.db, thresholds, { limit: 5 })).toHaveLength(5);

    await r.queues.add(refreshScan, {});
    const run = await waitFor(
      async () => {
        const x = await r.db.selectFrom('refreshRuns').selectAll().where('kind', '=', 'scheduled').executeTakeFirst();
        return x?.status === 'done' ? x : null;
      },
      { timeoutMs: 60_000, what: 'cycle done' },
    );
    expect(run).toMatchObject({ total: 20, answered: 20, failed: 0, drift: 10 });
    expect(await runProgress(r.db, (await getRun(r.db, run.id))!)).toMatchObject({
      total: 20,
      answered: 20,
      pending: 0,
      drift: 10,
      settled: true,
    });
    const states = await r.db.selectFrom('users').select(['id', 'kycState']).execute();
    expect(states.filter((s) => s.kycState === 'VERIFIED')).toHaveLength(5);
    expect(states.filter((s) => s.kycState === 'REVIEW_NEEDED')).toHaveLength(5);
    expect(states.filter((s) => s.kycState === 'LINK_ISSUED')).toHaveLength(10);

    const today = new Date().toISOString().slice(0, 10);
    expect(await driftCountsPerDay(r.db)).toEqual([{ day: today, count: 10, customers: 10 }]);
    expect(await countDriftSince(r.db, today)).toBe(10);
    const page = await listDrift(r.db, { day: today, page: 1, pageSize: 4 });
    expect(page.total).toBe(10);
    expect(page.rows).toHaveLength(4);
    expect(page.rows[0]).toMatchObject({ wasState: 'LINK_ISSUED', applied: 1, runId: run.id, triggeredBy: `refresh:${run.id}` });
    expect(page.rows.every((d) => d.evidence?.includes('never received'))).toBe(true);
  });
});
