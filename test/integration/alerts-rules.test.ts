import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapaClient } from '../../capa/client.js';
import { SIGNATURE_HEADER, signBody } from '../../capa/signature.js';
import { eventsFor, openAlert } from '../../db/repositories/alerts.js';
import { lastValidWebhookAt } from '../../db/repositories/alert-sources.js';
import { commitImport, createImport, pauseImport, resumeImport } from '../../db/repositories/imports.js';
import { insertMessage } from '../../db/repositories/notifications.js';
import { applySignal, insertUser } from '../../db/repositories/users.js';
import type { Alert } from '../../db/schema.js';
import type { AlertRuleId } from '../../domain/alerts.js';
import { saveRuleOverrides } from '../../jobs/alerts/config.js';
import { evaluateAlerts, type EngineDeps } from '../../jobs/alerts/engine.js';
import { CapaCallStats } from '../../jobs/capa-metrics.js';
import { logger } from '../../lib/logger.js';
import { API_KEY, createTestRuntime, postgresAvailable, waitFor, type TestRuntime } from '../support/runtime.js';

/**
 * Each rule fires and resolves on real data: rows written by the real intake and repositories,
 * Redis queues and Capa call counts, the sandbox with faults. The evaluator's clock is passed in,
 * so for-durations and resolve delays are crossed without waiting; data that must look old is
 * dated back instead.
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

const S = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

for (const kind of kinds) {
  describe(`alert rules on ${kind}`, () => {
    let rt: TestRuntime;
    let deps: EngineDeps;

    beforeAll(async () => {
      rt = await createTestRuntime({ dbKind: kind, worker: false });
      deps = { db: rt.db, queues: rt.queues, env: rt.env, logger };
    });
    afterAll(async () => {
      await rt?.close();
    });

    async function evaluate(rule: AlertRuleId, now: number): Promise<Alert | undefined> {
      const [out] = await evaluateAlerts(deps, { rules: [rule], now });
      expect(out?.error, `${rule} measured without error`).toBeUndefined();
      return latest(rule);
    }
    const latest = (rule: AlertRuleId) =>
      rt.db.selectFrom('alerts').selectAll().where('ruleId', '=', rule).orderBy('pendingSince', 'desc').limit(1).executeTakeFirst();
    const history = async (a: Alert) => (await eventsFor(rt.db, [a.id])).map((e) => e.kind);
    const values = (a: Alert | undefined) => JSON.parse(a!.measure) as Record<string, unknown>;

    /** Fires at `fireAt`, stays firing until the resolve delay has run from `clearAt`, then resolves. */
    async function expectResolves(rule: AlertRuleId, clearAt: number, resolveSeconds: number) {
      expect((await evaluate(rule, clearAt))?.state).toBe('firing');
      expect((await latest(rule))?.resolvingSince).toBe(iso(clearAt));
      expect((await evaluate(rule, clearAt + resolveSeconds * S - 1))?.state).toBe('firing');
      const resolved = await evaluate(rule, clearAt + resolveSeconds * S);
      expect(resolved).toMatchObject({
        state: 'resolved',
        openKey: null,
        resolvedReason: 'cleared',
        resolvedAt: iso(clearAt + resolveSeconds * S),
      });
      expect(await history(resolved!)).toEqual(['fired', 'notified', 'resolving', 'resolved', 'notified']);
      expect(await openAlert(rt.db, rule)).toBeUndefined();
    }

    it('webhooks.silent: no valid webhook for an hour while a customer waits on Capa; resolves when one arrives', async () => {
      const t0 = Date.now();
      expect(await evaluate('webhooks.silent', t0)).toBeUndefined(); // nobody waits: nothing is expected

      const u = await insertUser(rt.db, { email: `silent-${kind}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
      await rt.db.transaction().execute((trx) => applySignal(trx, u.id, { kind: 'LINK_ISSUED' }, { type: 'system' }));
      expect(await evaluate('webhooks.silent', t0 + 3599 * S)).toBeUndefined(); // not silent for an hour yet
      // The link went out two hours ago and nothing came back since.
      await rt.db
        .updateTable('users')
        .set({ kycStateChangedAt: iso(t0 - 7200 * S) })
        .where('id', '=', u.id)
        .execute();
      const fired = await evaluate('webhooks.silent', t0);
      expect(fired).toMatchObject({ state: 'firing', severity: 'critical', page: '/webhooks?verdict=valid' });
      expect(values(fired)).toMatchObject({ customers: 1, lastValidAt: null, silentSeconds: 7200 });

      // Capa speaks again: a signed webhook through the real intake.
      rt.sandbox.emitEvent({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId }, API_KEY);
      await waitFor(() => lastValidWebhookAt(rt.db), { what: 'a valid webhook in the inbox' });
      await expectResolves('webhooks.silent', Date.now() + 1, 300);
    });

    it('webhooks.signature_failures: a share of bad signatures in the window; resolves once they leave it', async () => {
      const t0 = Date.now();
      const body = JSON.stringify({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'someone' });
      for (let i = 0; i < 3; i++) {
        const res = await fetch(rt.intakeUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(body, 'a-rotated-secret') },
          body,
        });
        expect(res.status).toBe(401);
      }
      const fired = await evaluate('webhooks.signature_failures', Date.now());
      expect(fired).toMatchObject({ state: 'firing', page: '/webhooks?verdict=mismatch' });
      expect(values(fired)).toMatchObject({ failed: 3 });
      expect(fired!.value).toBeGreaterThanOrEqual(50);
      await expectResolves('webhooks.signature_failures', t0 + 3601 * S, 300);
    });

    it('capa.errors: Capa answering 500 to most calls for two minutes; resolves when the errors leave the window', async () => {
      const stats = new CapaCallStats(rt.queues.connection, rt.queues.prefix, 3_600_000);
      const client = new CapaClient({ baseUrl: rt.sandbox.url, apiKey: API_KEY, timeoutMs: 2000, maxRetries: 0, onCall: stats.record });
      const calls = async (n: number) => {
        for (let i = 0; i < n; i++) await client.listWebhookNotifications({ limit: 1 }).catch(() => undefined);
        await stats.flush();
      };
      try {
        const t0 = Date.now();
        await calls(5);
        expect(await evaluate('capa.errors', t0)).toBeUndefined(); // the first sample is the baseline
        rt.sandbox.setFaults({ errorRate: 1 });
        await calls(12);
        const pending = await evaluate('capa.errors', t0 + 60 * S);
        expect(pending).toMatchObject({ state: 'pending' });
        expect(values(pending)).toMatchObject({ errors: 12, calls: 12, percent: 100 });
        expect((await evaluate('capa.errors', t0 + 179 * S))?.state).toBe('pending');
        expect((await evaluate('capa.errors', t0 + 180 * S))?.state).toBe('firing');
        rt.sandbox.setFaults({});
        await calls(20);
        // Ten minutes on, the window holds only the calls that succeeded.
        await expectResolves('capa.errors', t0 + 800 * S, 300);
      } finally {
        rt.sandbox.setFaults({});
        await stats.close();
      }
    });

    it('imports.paused: an import paused by an outage; a resume and pause again within the resolve delay is one alert', async () => {
      const id = await createImport(rt.db, {
        fileName: 'night.csv',
        fileSha256: randomUUID(),
        fileBytes: 10,
        delimiter: ',',
        createdBy: null,
      });
      await commitImport(rt.db, id, null);
      const t0 = Date.now();
      // An operator's own pause is not trouble.
      await pauseImport(rt.db, id, 'operator', 'by hand');
      expect(await evaluate('imports.paused', t0)).toBeUndefined();
      await resumeImport(rt.db, id);
      await pauseImport(rt.db, id, 'outage', 'Capa is not answering');
      const fired = await evaluate('imports.paused', t0 + S);
      expect(fired).toMatchObject({ state: 'firing', severity: 'warning', page: `/imports/${id}` });
      expect(values(fired)).toMatchObject({ imports: 1, fileName: 'night.csv' });

      // The outage probe resumes it, Capa still fails, it pauses again: no new alert, no new message.
      await resumeImport(rt.db, id);
      expect((await evaluate('imports.paused', t0 + 60 * S))?.resolvingSince).toBe(iso(t0 + 60 * S));
      await pauseImport(rt.db, id, 'outage', 'Capa is still not answering');
      const back = await evaluate('imports.paused', t0 + 120 * S);
      expect(back).toMatchObject({ id: fired!.id, state: 'firing', resolvingSince: null });
      expect(await history(back!)).toEqual(['fired', 'notified', 'resolving', 'returned']);

      await resumeImport(rt.db, id);
      const done = await evaluate('imports.paused', t0 + 180 * S);
      expect(done?.state).toBe('firing');
      expect((await evaluate('imports.paused', t0 + 480 * S))?.state).toBe('resolved');
    });

    it('queues.backlog: jobs waiting for five minutes above the threshold; resolves when they are gone', async () => {
      await saveRuleOverrides(rt.db, { 'queues.backlog': { params: { waiting: 3 } } }, null);
      const q = rt.queues.queue('capa');
      for (let i = 0; i < 5; i++) await q.add('fetch-details', { userId: `u${i}`, cause: 'test' });
      const t0 = Date.now();
      expect(await evaluate('queues.backlog', t0)).toMatchObject({ state: 'pending' });
      const fired = await evaluate('queues.backlog', t0 + 300 * S);
      expect(fired?.state).toBe('firing');
      expect(values(fired)).toMatchObject({ queue: 'capa', waiting: 5, queues: 'capa' });
      await q.drain();
      await expectResolves('queues.backlog', t0 + 301 * S, 300);
      await saveRuleOverrides(rt.db, {}, null);
    });

    it('email.failures: a burst of failed customer e-mails; resolves when the window has passed', async () => {
      const u = await insertUser(rt.db, { email: `bounce-${kind}@example.com`, type: 'INDIVIDUAL', country: 'MX' });
      for (let i = 0; i < 10; i++) {
        await insertMessage(rt.db, {
          userId: u.id,
          kind: 'kyc_link',
          channel: 'email',
          locale: 'es',
          address: u.email,
          dedupeKey: `bounce:${randomUUID()}`,
          failWith: 'SMTP 550 at RCPT TO: no such user',
        });
      }
      const t0 = Date.now();
      const fired = await evaluate('email.failures', t0);
      expect(fired).toMatchObject({ state: 'firing', page: '/notifications?status=failed' });
      expect(values(fired)).toMatchObject({ failed: 10, settled: 10, percent: 100 });
      await expectResolves('email.failures', t0 + 3601 * S, 600);
    });

    it('review.sla_breached: a case waiting on us past its SLA; resolves when the case is answered', async () => {
      const u = await insertUser(rt.db, { email: `sla-${kind}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
      await rt.db
        .updateTable('users')
        .set({ kycState: 'REVIEW_NEEDED', kycStateChangedAt: iso(Date.now() - 30 * 3600 * S) })
        .where('id', '=', u.id)
        .execute();
      const t0 = Date.now();
      const fired = await evaluate('review.sla_breached', t0);
      expect(fired).toMatchObject({ state: 'firing', page: '/review?breached=1' });
      expect(values(fired)).toMatchObject({ cases: 1 });
      expect(Number(values(fired).overdueSeconds)).toBeGreaterThanOrEqual(6 * 3600 - 5);
      await rt.db
        .transaction()
        .execute((trx) => applySignal(trx, u.id, { kind: 'WEBHOOK', event: 'VERIFIED_USER', reinvitation: null }, { type: 'system' }));
      await expectResolves('review.sla_breached', t0 + S, 300);
    });

    it('drift.spike: polling corrects far more states than usual; a disabled rule resolves its alert', async () => {
      const u = await insertUser(rt.db, { email: `drift-${kind}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
      const t0 = Date.now();
      const drift = (at: number) => ({
        userId: u.id,
        detectedAt: iso(at),
        wasState: 'LINK_ISSUED' as const,
        nowState: 'VERIFIED' as const,
        jobName: 'fetch-details',
        triggeredBy: 'refresh:1',
      });
      // The usual: about one a day over the last week.
      for (let d = 1; d <= 7; d++)
        await rt.db
          .insertInto('driftEvents')
          .values(drift(t0 - d * 86_400 * S))
          .execute();
      for (let i = 0; i < 4; i++)
        await rt.db
          .insertInto('driftEvents')
          .values(drift(t0 - (i + 1) * 60 * S))
          .execute();
      expect(await evaluate('drift.spike', t0)).toBeUndefined(); // four is below the minimum
      await rt.db
        .insertInto('driftEvents')
        .values(drift(t0 - 30 * S))
        .execute();
      const fired = await evaluate('drift.spike', t0);
      expect(fired).toMatchObject({ state: 'firing', page: '/drift' });
      expect(values(fired)).toMatchObject({ corrections: 5 });

      await saveRuleOverrides(rt.db, { 'drift.spike': { enabled: false } }, 'admin@desk.test');
      const off = await evaluate('drift.spike', t0 + S);
      expect(off).toMatchObject({ state: 'resolved', resolvedReason: 'rule_disabled' });
      await saveRuleOverrides(rt.db, {}, null);
    });

    it('workers.none: no worker for a minute; resolves a minute after workers connect', async () => {
      const t0 = Date.now();
      expect(await evaluate('workers.none', t0)).toMatchObject({ state: 'pending' });
      const fired = await evaluate('workers.none', t0 + 60 * S);
      expect(fired).toMatchObject({ state: 'firing', severity: 'critical', page: '/queues' });
      expect(String(values(fired).queues).split(', ').sort()).toEqual(['capa', 'maintenance', 'notifications', 'webhooks']);
      await rt.startWorkers({ schedules: false });
      await waitFor(async () => (await Promise.all(rt.queues.allQueues().map((q) => q.getWorkers()))).every((w) => w.length > 0), {
        what: 'every queue has a worker',
      });
      await expectResolves('workers.none', t0 + 61 * S, 60);
    });
  });
}
