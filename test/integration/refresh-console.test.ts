import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loader as driftLoader } from '../../app/routes/drift';
import { loader as runLoader } from '../../app/routes/refresh.$runId';
import { action as refreshAction, loader as refreshLoader } from '../../app/routes/refresh._index';
import { buildTimeline } from '../../app/timeline.server';
import { getFixedT } from '../../app/i18n.js';
import '../../app/refresh.server';
import { insertUser, findUserById } from '../../db/repositories/users.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { refreshScan } from '../../jobs/definitions/refresh-scan.js';
import { Queues } from '../../jobs/queues.js';
import { setServices } from '../../app/services.server.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { call, get, post, signInAs, type Browser } from './console-helpers.js';

/** A message (code and values) as an English or Spanish reader sees it. */
const en = getFixedT('en');
const es = getFixedT('es');
type Msg = { code: string; values?: Record<string, string | number> };
const words = (m: Msg | string | null | undefined, t = en) => (m == null ? '' : typeof m === 'string' ? m : t(m.code, m.values ?? {}));

/** The operator side of stale-status refresh through the real route modules, auth and CSRF guards. */
describe('refresh and drift in the console', () => {
  let rt: TestRuntime;
  let compliance: Browser & { operatorId: string };
  let viewer: Browser & { operatorId: string };
  let users: Awaited<ReturnType<typeof insertUser>>[] = [];
  let notInCapa: Awaited<ReturnType<typeof insertUser>>;

  beforeAll(async () => {
    rt = await createTestRuntime({
      worker: false,
      env: {
        REFRESH_STALE_LINK_ISSUED_MINUTES: '0',
        REFRESH_STALE_IN_PROGRESS_MINUTES: '0',
        REFRESH_STALE_REVIEW_NEEDED_MINUTES: '0',
        CAPA_RATE_LIMIT_PER_SEC: '50',
      },
    });
    await rt.startWorkers({ schedules: false });
    compliance = await signInAs(rt.db, 'compliance');
    viewer = await signInAs(rt.db, 'viewer');
    for (let i = 0; i < 8; i++)
      users.push(await insertUser(rt.db, { email: `console-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' }));
    await Promise.all(
      users.map((u) => rt.queues.add(createCapaUser, { userId: u.id, sendLink: { country: 'MX', requestId: randomUUID() } })),
    );
    await waitFor(
      async () =>
        (await rt.db.selectFrom('users').select('id').where('kycState', '=', 'LINK_ISSUED').where('capaUserId', 'is not', null).execute())
          .length === 8,
      { timeoutMs: 30_000 },
    );
    users = await Promise.all(users.map(async (u) => (await findUserById(rt.db, u.id))!));
    // Capa knows the outcomes; every webhook is lost.
    rt.sandbox.setDelivery({ dropRate: 1 });
    users.slice(0, 4).forEach((u, i) => rt.sandbox.setOutcome(u.capaUserId!, i % 2 ? 'VERIFIED' : 'REVIEW_NEEDED'));
    await rt.sandbox.flushDeliveries();
    rt.sandbox.setDelivery({ dropRate: 0 });
    notInCapa = await insertUser(rt.db, { email: 'not-in-capa@example.mx', type: 'INDIVIDUAL', country: 'MX' });
  }, 60_000);
  afterAll(async () => {
    await rt?.close();
  });

  const refreshAudit = () => rt.db.selectFrom('auditLog').selectAll().where('action', 'like', 'refresh.%').orderBy('id').execute();

  it('the refresh page is for compliance and up; the drift page for every role', async () => {
    expect((await call(refreshLoader, get('/refresh', null))).location).toMatch(/^\/login/);
    expect((await call(refreshLoader, get('/refresh', viewer))).status).toBe(403);
    const page = await call(refreshLoader, get('/refresh', compliance));
    expect(page.status).toBe(200);
    expect(page.data.stale).toMatchObject({ total: 8, LINK_ISSUED: 8 });
    expect(page.data.rows).toHaveLength(8);
    expect((await call(driftLoader, get('/drift', viewer))).status).toBe(200);
    // A viewer cannot start a refresh either.
    const denied = await call(refreshAction, post('/refresh', viewer, { intent: 'preview', scope: 'all' }));
    expect(denied.status).toBe(403);
  });

  it('bad input gets a clear message and writes nothing', async () => {
    const none = await call(refreshAction, post('/refresh', compliance, { intent: 'preview', scope: 'selected' }));
    expect(none.status).toBe(400);
    expect(none.data.errors.userIds).toEqual({ code: 'refresh:errors.none_selected' });
    expect(words(none.data.errors.userIds)).toMatch(/Select at least one/);
    const bogus = await call(refreshAction, post('/refresh', compliance, { intent: 'explode', scope: 'all' }));
    expect(bogus.status).toBe(400);
    expect(words(bogus.data.errors.intent)).toMatch(/Preview or Start/);
    const tooMany = await call(
      refreshAction,
      post('/refresh', compliance, { intent: 'preview', scope: 'selected', userId: Array.from({ length: 1001 }, (_, i) => `u${i}`) }),
    );
    expect(tooMany.status).toBe(400);
    expect(tooMany.data.errors.userIds).toEqual({ code: 'refresh:errors.over_limit', values: { max: 1000 } });
    expect(words(tooMany.data.errors.userIds)).toMatch(/at most 1000/);
    expect(words(tooMany.data.errors.userIds, es)).toMatch(/como máximo 1000/);
    const noCsrf = await call(
      refreshAction,
      post('/refresh', compliance, { intent: 'start', scope: 'all', requestId: 'abcdefgh12' }, { csrf: null }),
    );
    expect(noCsrf.status).toBe(403);
    expect(await rt.db.selectFrom('refreshRuns').select('id').execute()).toEqual([]);
    expect(await refreshAudit()).toEqual([]);
  });

  it('“refresh all stale now”: preview (calls, ETA), then an audited, tracked run', { timeout: 60_000 }, async () => {
    const preview = await call(refreshAction, post('/refresh', compliance, { intent: 'preview', scope: 'all' }));
    expect(preview.status).toBe(200);
    expect(preview.data.preview).toMatchObject({
      scope: 'all',
      calls: 8,
      ratePerSec: 50,
      byState: { LINK_ISSUED: 8, IN_PROGRESS: 0, REVIEW_NEEDED: 0 },
    });
    expect(preview.data.preview.etaSeconds).toBeGreaterThanOrEqual(1);
    // The page words the ETA from its seconds in the reader's language ("about 1 sec" / "aprox. 1 s").
    expect(Number.isInteger(preview.data.preview.etaSeconds)).toBe(true);
    // A preview writes nothing.
    expect(await rt.db.selectFrom('refreshRuns').select('id').execute()).toEqual([]);

    const requestId = 'req-all-stale-1';
    const started = await call(refreshAction, post('/refresh', compliance, { intent: 'start', scope: 'all', requestId }));
    expect(started.status).toBe(302);
    const runId = Number(/^\/refresh\/(\d+)$/.exec(started.location ?? '')?.[1]);
    expect(runId).toBeGreaterThan(0);
    // The same form sent twice starts one run.
    const again = await call(refreshAction, post('/refresh', compliance, { intent: 'start', scope: 'all', requestId }));
    expect(again.location).toBe(`/refresh/${runId}`);
    expect(await rt.db.selectFrom('refreshRuns').select('id').execute()).toHaveLength(1);
    const audit = await refreshAudit();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      action: 'refresh.all_stale',
      outcome: 'queued',
      operatorId: compliance.operatorId,
      targetType: 'refresh_run',
      targetId: String(runId),
    });
    expect(JSON.parse(audit[0]!.detail!)).toMatchObject({ calls: 8, ratePerSec: 50 });

    const done = await waitFor(
      async () => {
        const r = await call(runLoader, get(`/refresh/${runId}`, viewer), { runId: String(runId) });
        return r.data.run.status === 'done' ? r.data : null;
      },
      { timeoutMs: 30_000, what: 'run done' },
    );
    expect(done.run).toMatchObject({ kind: 'all_stale', total: 8, answered: 8, failed: 0, drift: 4 });
    expect(done.run.progress).toMatchObject({ total: 8, answered: 8, pending: 0, drift: 4 });
    expect(done.requestedBy).toBe('compliance operator');
    expect(done.drift).toHaveLength(4);

    // The Drift page: counts per day, the list with links to customers, e-mails masked for viewers.
    const drift = await call(driftLoader, get('/drift', viewer));
    const today = new Date().toISOString().slice(0, 10);
    expect(drift.data.perDay).toEqual([{ day: today, count: 4, customers: 4 }]);
    expect(drift.data.total).toBe(4);
    expect(drift.data.rows.every((r: { email: string }) => r.email.includes('•'))).toBe(true);
    expect(drift.data.rows.map((r: { userId: string }) => r.userId).sort()).toEqual(
      users
        .slice(0, 4)
        .map((u) => u.id)
        .sort(),
    );
    expect(drift.data.rows[0]).toMatchObject({
      wasState: 'LINK_ISSUED',
      runId,
      missedEvents: expect.stringMatching(/^CREATED_KYC,(VERIFIED_USER|REVIEW_NEEDED_KYC)$/),
    });
    const forCompliance = await call(driftLoader, get(`/drift?day=${today}&now=VERIFIED&size=10`, compliance));
    expect(forCompliance.data.total).toBe(2);
    expect(forCompliance.data.rows[0].email).toMatch(/^console-\d@example\.mx$/);
    // A malformed filter is ignored, not an error.
    expect((await call(driftLoader, get('/drift?day=yesterday&sort=DROP%20TABLE&page=-4', viewer))).data.total).toBe(4);

    // The customer's timeline shows the drift entry with the missed events.
    const user = (await findUserById(rt.db, users[1]!.id))!;
    const tl = await buildTimeline({ db: rt.db, user, canSeePii: true });
    const entry = tl.find((e) => e.kind === 'drift');
    expect(entry?.title).toEqual({ code: 'drift:timeline.title', values: { now: 'VERIFIED', was: 'LINK_ISSUED' } });
    expect(words(entry?.title)).toBe('Drift: Capa said Verified while we showed Link issued');
    expect(words(entry?.title, es)).toBe('Discrepancia: Capa dijo Verificado mientras mostrábamos Enlace enviado');
    const missed = entry?.facts?.find(([label]) => typeof label !== 'string' && label.code === 'drift:timeline.facts.likely_missed');
    expect(missed?.[1]).toBe('CREATED_KYC, VERIFIED_USER');
  });

  it('“refresh these N selected”: customers not in Capa or unknown are skipped and said so', { timeout: 60_000 }, async () => {
    const ids = [users[4]!.id, users[5]!.id, notInCapa.id, 'no-such-customer'];
    const preview = await call(refreshAction, post('/refresh', compliance, { intent: 'preview', scope: 'selected', userId: ids }));
    expect(preview.data.preview).toMatchObject({ scope: 'selected', calls: 2, notInCapa: 1, unknown: 1 });
    expect(preview.data.preview.userIds.sort()).toEqual([users[4]!.id, users[5]!.id].sort());
    const started = await call(
      refreshAction,
      post('/refresh', compliance, {
        intent: 'start',
        scope: 'selected',
        requestId: 'req-selected-1',
        userId: preview.data.preview.userIds,
      }),
    );
    expect(started.status).toBe(302);
    const runId = Number(started.location!.split('/').pop());
    const run = await waitFor(
      async () => {
        const r = await rt.db.selectFrom('refreshRuns').selectAll().where('id', '=', runId).executeTakeFirst();
        return r?.status === 'done' ? r : null;
      },
      { timeoutMs: 30_000 },
    );
    expect(run).toMatchObject({ kind: 'selected', total: 2, answered: 2, drift: 0 });
    expect((await refreshAudit()).at(-1)).toMatchObject({ action: 'refresh.selected', targetId: String(runId), outcome: 'queued' });
    // Nobody to ask: a clear message, no run.
    const nothing = await call(
      refreshAction,
      post('/refresh', compliance, { intent: 'start', scope: 'selected', requestId: 'req-selected-2', userId: [notInCapa.id] }),
    );
    expect(nothing.status).toBe(400);
    expect(words(nothing.data.errors.form)).toMatch(/None of the selected customers is in Capa yet/);
    expect(await rt.db.selectFrom('refreshRuns').select('id').where('requestId', '=', 'req-selected-2').execute()).toEqual([]);
  });

  it('with Redis down the run is stored and audited, and the next scan queues it', { timeout: 60_000 }, async () => {
    const deadRedis = new Queues({ redis: 'redis://127.0.0.1:1', prefix: 'dead' });
    setServices({ ...rt.services, queues: deadRedis });
    let runId: number;
    try {
      const started = await call(
        refreshAction,
        post('/refresh', compliance, { intent: 'start', scope: 'selected', requestId: 'req-redis-down', userId: [users[6]!.id] }),
      );
      expect(started.status).toBe(302);
      runId = Number(started.location!.split('/').pop());
    } finally {
      setServices(rt.services);
      deadRedis.connection.disconnect();
    }
    expect(await rt.db.selectFrom('refreshRuns').select(['status', 'total']).where('id', '=', runId).executeTakeFirst()).toEqual({
      status: 'queued',
      total: 1,
    });
    const audit = (await refreshAudit()).at(-1)!;
    expect(audit).toMatchObject({ action: 'refresh.selected', targetId: String(runId), outcome: 'queued' });
    expect(JSON.parse(audit.detail!)).toMatchObject({ redis: 'unavailable' });
    // Once the run is old enough to be considered lost, the scheduled scan queues it.
    await rt.db
      .updateTable('refreshRuns')
      .set({ createdAt: new Date(Date.now() - 60_000).toISOString() })
      .where('id', '=', runId)
      .execute();
    await rt.queues.add(refreshScan, {});
    await waitFor(
      async () => (await rt.db.selectFrom('refreshRuns').select('status').where('id', '=', runId).executeTakeFirst())?.status === 'done',
      { timeoutMs: 30_000, what: 'stored run done' },
    );
  });

  it('an unknown run number is a 404 with a message', async () => {
    const r = await call(runLoader, get('/refresh/999999', viewer), { runId: '999999' });
    expect(r.status).toBe(404);
    expect(r.data).toBe('refresh:run.not_found');
    expect(en(r.data)).toMatch(/no refresh run with that number/);
    expect((await call(runLoader, get('/refresh/abc', viewer), { runId: 'abc' })).status).toBe(404);
  });
});
