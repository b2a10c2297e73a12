import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { action, loader } from '../../app/routes/alerts';
import { loader as rootLoader } from '../../app/root';
import { eventsFor, openAlert } from '../../db/repositories/alerts.js';
import { commitImport, createImport, pauseImport } from '../../db/repositories/imports.js';
import { alertConfig } from '../../jobs/alerts/config.js';
import { evaluateAlerts } from '../../jobs/alerts/engine.js';
import { logger } from '../../lib/logger.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { call, get, post, signInAs, type Browser } from './console-helpers.js';

/**
 * /alerts through its real loader and action: who may do what (viewer sees, compliance
 * acknowledges and silences, admin changes thresholds and recipients), every change audited,
 * bad input answered with a message code per field, the header's badge.
 */
describe('/alerts', () => {
  let rt: TestRuntime;
  let viewer: Browser;
  let compliance: Browser & { email: string };
  let admin: Browser & { email: string };

  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false, env: { ALERTS_EMAIL_CRITICAL: 'oncall@desk.test' } });
    viewer = await signInAs(rt.db, 'viewer');
    compliance = await signInAs(rt.db, 'compliance');
    admin = await signInAs(rt.db, 'admin');
    const id = await createImport(rt.db, {
      fileName: 'console.csv',
      fileSha256: randomUUID(),
      fileBytes: 1,
      delimiter: ',',
      createdBy: null,
    });
    await commitImport(rt.db, id, null);
    await pauseImport(rt.db, id, 'outage', 'Capa is not answering');
    await evaluateAlerts({ db: rt.db, queues: rt.queues, env: rt.env, logger }, { rules: ['imports.paused'] });
  });
  afterAll(async () => {
    await rt?.close();
  });

  const audits = (action: string) => rt.db.selectFrom('auditLog').selectAll().where('action', '=', action).orderBy('id').execute();

  it('shows viewers the firing alert, the rules and the recipients, and the badge counts it', async () => {
    const res = await call(loader, get('/alerts', viewer));
    expect(res.status).toBe(200);
    const d = res.data;
    expect(d.canAct).toBe(false);
    expect(d.canEdit).toBe(false);
    expect(d.counts).toEqual({ firing: 1, acknowledged: 0 });
    expect(d.open[0]).toMatchObject({
      ruleId: 'imports.paused',
      state: 'firing',
      severity: 'warning',
      title: 'Import paused by a Capa outage',
    });
    expect(d.open[0].summary).toContain('console.csv');
    expect(d.rules.map((r: { id: string }) => r.id)).toContain('workers.none');
    // Loading the page checked for workers (none run in this test): that rule is pending.
    expect(d.rules.find((r: { id: string }) => r.id === 'workers.none')).toMatchObject({ evaluator: 'web', active: true });
    expect(d.routing).toMatchObject({ critical: ['oncall@desk.test'], warning: [], fromEnv: true });

    const root = await call(rootLoader, get('/', viewer));
    expect(root.data.alerts).toEqual({ firing: 1, critical: 0, acknowledged: 0 });
  });

  it('words alerts in the reader’s language', async () => {
    const res = await call(loader, get('/alerts', viewer, { 'accept-language': 'es-MX,es;q=0.9' }));
    // The operator has no language of their own: the browser's Spanish wins.
    expect(res.data.open[0].title).toBe('Importación pausada por una caída de Capa');
  });

  it('lets compliance acknowledge with a reason, once, audited', async () => {
    const alert = (await openAlert(rt.db, 'imports.paused'))!;
    const missing = await call(action, post('/alerts', compliance, { intent: 'acknowledge', alertId: alert.id, reason: '' }));
    expect(missing.data).toMatchObject({ tone: 'error', errors: { reason: 'alerts:errors.reason_missing' } });
    expect((await openAlert(rt.db, 'imports.paused'))?.state).toBe('firing');

    const ok = await call(
      action,
      post('/alerts', compliance, { intent: 'acknowledge', alertId: alert.id, reason: 'Capa support ticket 123' }),
    );
    expect(ok.data).toMatchObject({ tone: 'ok', code: 'alerts:messages.acknowledged' });
    expect(await openAlert(rt.db, 'imports.paused')).toMatchObject({
      state: 'acknowledged',
      acknowledgedByName: compliance.email,
      ackReason: 'Capa support ticket 123',
    });
    const again = await call(action, post('/alerts', compliance, { intent: 'acknowledge', alertId: alert.id, reason: 'twice' }));
    expect(again.data).toMatchObject({ tone: 'info', code: 'alerts:messages.not_firing', values: { state: 'acknowledged' } });
    const [entry, ...more] = await audits('alert.acknowledge');
    expect(more).toEqual([]);
    expect(entry).toMatchObject({ actor: compliance.email, targetType: 'alert', targetId: alert.id, outcome: 'ok' });
    expect((await eventsFor(rt.db, [alert.id])).map((e) => e.kind)).toEqual(['fired', 'notified', 'acknowledged']);
    const root = await call(rootLoader, get('/', viewer));
    expect(root.data.alerts).toEqual({ firing: 0, critical: 0, acknowledged: 1 });
  });

  it('lets compliance silence a rule with a reason and an end, and end it early, audited', async () => {
    const bad = await call(action, post('/alerts', compliance, { intent: 'silence', ruleId: 'capa.errors', minutes: '17', reason: 'x' }));
    expect(bad.data.errors).toEqual({ minutes: 'alerts:errors.duration_invalid', reason: 'alerts:errors.reason_missing' });
    const unknown = await call(
      action,
      post('/alerts', compliance, { intent: 'silence', ruleId: 'capa.nope', minutes: '60', reason: 'maintenance' }),
    );
    expect(unknown.data.errors).toEqual({ ruleId: 'alerts:errors.rule_unknown' });

    const before = Date.now();
    const ok = await call(
      action,
      post('/alerts', compliance, { intent: 'silence', ruleId: 'capa.errors', minutes: '120', reason: 'Capa maintenance' }),
    );
    expect(ok.data).toMatchObject({ tone: 'ok', code: 'alerts:messages.silenced', values: { rule: 'capa.errors' } });
    const page = (await call(loader, get('/alerts', viewer))).data;
    const s = page.silences.find((x: { ruleId: string }) => x.ruleId === 'capa.errors');
    expect(s).toMatchObject({ reason: 'Capa maintenance', by: compliance.email, active: true });
    expect(Date.parse(s.endsAt) - before).toBeGreaterThanOrEqual(120 * 60_000);
    expect(page.rules.find((r: { id: string }) => r.id === 'capa.errors').silencedUntil).toBe(s.endsAt);

    const end = await call(action, post('/alerts', compliance, { intent: 'end-silence', silenceId: s.id }));
    expect(end.data).toMatchObject({ tone: 'ok', code: 'alerts:messages.silence_ended' });
    const over = await call(action, post('/alerts', compliance, { intent: 'end-silence', silenceId: s.id }));
    expect(over.data).toMatchObject({ tone: 'info', code: 'alerts:messages.silence_over' });
    expect((await audits('alert.silence')).map((a) => a.targetId)).toEqual(['capa.errors']);
    expect((await audits('alert.silence_end')).map((a) => a.actor)).toEqual([compliance.email]);
  });

  it('refuses threshold and recipient changes to compliance (403, audited) and to viewers', async () => {
    const res = await call(action, post('/alerts', compliance, { intent: 'save-rule', ruleId: 'capa.errors', severity: 'warning' }));
    expect(res.status).toBe(403);
    const recipients = await call(action, post('/alerts', compliance, { intent: 'save-recipients', critical: 'x@desk.test' }));
    expect(recipients.status).toBe(403);
    const denied = await audits('access.denied');
    expect(denied.filter((a) => a.actor === compliance.email).map((a) => a.targetId)).toEqual([
      'POST /alerts (save-rule)',
      'POST /alerts (save-recipients)',
    ]);
    const asViewer = await call(action, post('/alerts', viewer, { intent: 'acknowledge', alertId: 'x', reason: 'because' }));
    expect(asViewer.status).toBe(403);
    expect((await alertConfig(rt.db, rt.env)).rules['capa.errors'].severity).toBe('critical');
  });

  it('lets admins change a rule’s thresholds (checked, audited) and put it back to its defaults', async () => {
    const form = (over: Record<string, string>) => ({
      intent: 'save-rule',
      ruleId: 'capa.errors',
      enabled: 'on',
      severity: 'critical',
      forSeconds: '120',
      resolveSeconds: '300',
      'p.windowSeconds': '600',
      'p.percent': '20',
      'p.minCalls': '10',
      ...over,
    });
    const bad = await call(action, post('/alerts', admin, form({ forSeconds: '1.5', 'p.percent': '250', 'p.minCalls': '' })));
    expect(bad.data).toMatchObject({
      tone: 'error',
      form: 'rule:capa.errors',
      errors: {
        forSeconds: 'alerts:errors.whole_number',
        'p.percent': 'alerts:errors.number_range',
        'p.minCalls': 'alerts:errors.number_range',
      },
    });

    const ok = await call(action, post('/alerts', admin, form({ severity: 'warning', 'p.percent': '35', forSeconds: '0' })));
    expect(ok.data).toMatchObject({ tone: 'ok', code: 'alerts:messages.rule_saved' });
    const cfg = await alertConfig(rt.db, rt.env);
    expect(cfg.rules['capa.errors']).toMatchObject({
      severity: 'warning',
      forSeconds: 0,
      params: { windowSeconds: 600, percent: 35, minCalls: 10 },
    });
    // Only what differs from the defaults is the admin's.
    expect(cfg.adminOverrides['capa.errors']).toEqual({ severity: 'warning', forSeconds: 0, params: { percent: 35 } });
    const [change] = await audits('alert.rule_change');
    expect(change).toMatchObject({ actor: admin.email, targetType: 'alert_rule', targetId: 'capa.errors', outcome: 'ok' });
    const detail = JSON.parse(change!.detail!);
    expect(detail.before).toMatchObject({ severity: 'critical', params: { percent: 20 } });
    expect(detail.after).toMatchObject({ severity: 'warning', params: { percent: 35 } });

    const page = (await call(loader, get('/alerts', admin))).data;
    expect(page.rules.find((r: { id: string }) => r.id === 'capa.errors')).toMatchObject({ severity: 'warning', changedByAdmin: true });

    const reset = await call(action, post('/alerts', admin, { intent: 'reset-rule', ruleId: 'capa.errors' }));
    expect(reset.data).toMatchObject({ tone: 'ok', code: 'alerts:messages.rule_reset' });
    expect((await alertConfig(rt.db, rt.env)).rules['capa.errors']).toMatchObject({
      severity: 'critical',
      forSeconds: 120,
      params: { percent: 20 },
    });
    expect(await audits('alert.rule_change')).toHaveLength(2);
  });

  it('lets admins set who is told per severity, checking each address, and go back to the environment’s lists', async () => {
    const bad = await call(
      action,
      post('/alerts', admin, { intent: 'save-recipients', critical: 'oncall@desk.test, not-an-address', warning: '' }),
    );
    expect(bad.data).toMatchObject({ tone: 'error', form: 'recipients', errors: { critical: 'alerts:errors.recipient_invalid' } });
    const ok = await call(
      action,
      post('/alerts', admin, {
        intent: 'save-recipients',
        critical: 'oncall@desk.test\nlead@desk.test',
        warning: 'lead@desk.test; ops@desk.test',
      }),
    );
    expect(ok.data).toMatchObject({ tone: 'ok', code: 'alerts:messages.recipients_saved' });
    expect((await alertConfig(rt.db, rt.env)).routing).toEqual({
      critical: ['oncall@desk.test', 'lead@desk.test'],
      warning: ['lead@desk.test', 'ops@desk.test'],
    });
    const page = (await call(loader, get('/alerts', viewer))).data;
    expect(page.routing).toMatchObject({ fromEnv: false, warning: ['lead@desk.test', 'ops@desk.test'] });
    await call(action, post('/alerts', admin, { intent: 'reset-recipients' }));
    expect((await alertConfig(rt.db, rt.env)).routing).toEqual({ critical: ['oncall@desk.test'], warning: [] });
    const changes = await audits('alert.recipients_change');
    expect(changes).toHaveLength(2);
    expect(JSON.parse(changes[0]!.detail!).after).toEqual({
      critical: ['oncall@desk.test', 'lead@desk.test'],
      warning: ['lead@desk.test', 'ops@desk.test'],
    });
  });
});
