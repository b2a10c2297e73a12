import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { commitImport, createImport, pauseImport, resumeImport } from '../../db/repositories/imports.js';
import { evaluateAlerts } from '../../jobs/alerts/engine.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { startReceiver, type Receiver } from '../support/capa.js';
import { startProc, type Proc } from '../support/processes.js';
import { createTestDb, redisUrl, waitFor, type TestDb } from '../support/runtime.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';

/**
 * Two real worker processes (jobs/worker.ts) evaluating every second from one schedule, and this
 * test evaluating at the same moments besides: an alert that fires is notified once — one ledger
 * row, one e-mail, one webhook per recipient — and resolved once.
 */
describe('alerts with two worker processes', () => {
  let tdb: TestDb;
  let sandbox: Sandbox;
  let smtp: TestSmtp;
  let hook: Receiver;
  let queues: Queues;
  const procs: Proc[] = [];
  const prefix = `al${randomBytes(4).toString('hex')}`;
  let env: ReturnType<typeof parseEnv>;

  beforeAll(async () => {
    tdb = await createTestDb('sqlite');
    sandbox = await createSandbox({
      partners: [{ apiKey: 'alerts-partner-key', webhookSecret: 'alerts-webhook-secret', webhookUrl: null }],
    });
    smtp = await startTestSmtp();
    hook = await startReceiver();
    const vars = {
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      CAPA_BASE_URL: sandbox.url,
      CAPA_API_KEY: 'alerts-partner-key',
      CAPA_WEBHOOK_SECRET: 'alerts-webhook-secret',
      SMTP_URL: smtp.url,
      ALERTS_EVERY_SECONDS: '1',
      ALERTS_RULES: 'imports.paused.resolveSeconds=0',
      ALERTS_EMAIL_WARNING: 'lead@desk.test',
      ALERTS_WEBHOOK_URL: hook.url,
      ALERTS_WEBHOOK_SECRET: 'two-workers-secret-0123',
      NOTIFY_BACKOFF_MS: '50',
      SHUTDOWN_TIMEOUT_MS: '5000',
    };
    env = parseEnv({ ...vars, NODE_ENV: 'test', LOG_LEVEL: 'silent' });
    queues = new Queues({ redis: env.redis, prefix });
    for (let i = 0; i < 2; i++) procs.push(startProc(`worker-${i}`, 'jobs/worker.ts', vars));
    await waitFor(async () => (await queues.queue('maintenance').getWorkers()).length === 2, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'two workers connected',
    });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await queues?.close();
    await hook?.close();
    await smtp?.close();
    await sandbox?.close();
    await tdb?.close();
  });

  const evaluations = async () =>
    (await tdb.db.selectFrom('alertRuleState').select('evaluatedAt').where('ruleId', '=', 'imports.paused').executeTakeFirst())
      ?.evaluatedAt;

  /** Waits until the workers have evaluated `n` more times, evaluating alongside them meanwhile. */
  async function roundsPass(n: number) {
    const seen = new Set<string>();
    await waitFor(
      async () => {
        await Promise.all([1, 2].map(() => evaluateAlerts({ db: tdb.db, queues, env, logger }, { rules: ['imports.paused'] })));
        const at = await evaluations();
        if (at) seen.add(at);
        return seen.size >= n * 2;
      },
      { timeoutMs: 60_000, intervalMs: 300, what: `${n} more evaluation rounds` },
    );
  }

  it('notifies once per firing and once per resolution', async () => {
    const id = await createImport(tdb.db, { fileName: 'two.csv', fileSha256: randomUUID(), fileBytes: 1, delimiter: ',', createdBy: null });
    await commitImport(tdb.db, id, null);
    await pauseImport(tdb.db, id, 'outage', 'Capa is not answering');
    const alert = await waitFor(
      () => tdb.db.selectFrom('alerts').selectAll().where('ruleId', '=', 'imports.paused').where('state', '=', 'firing').executeTakeFirst(),
      { timeoutMs: 30_000, what: 'the alert firing' },
    );
    await roundsPass(4);
    await waitFor(() => smtp.to('lead@desk.test').length >= 1 && hook.received.length >= 1, { timeoutMs: 20_000, what: 'messages out' });
    await roundsPass(2);

    const rows = await tdb.db.selectFrom('notifications').select(['kind', 'channel', 'status']).where('alertId', '=', alert.id).execute();
    expect(rows.sort((a, b) => a.channel.localeCompare(b.channel))).toEqual([
      { kind: 'alert_firing', channel: 'email', status: 'sent' },
      { kind: 'alert_firing', channel: 'webhook', status: 'sent' },
    ]);
    expect(smtp.to('lead@desk.test')).toHaveLength(1);
    expect(hook.received).toHaveLength(1);
    const kinds = (await tdb.db.selectFrom('alertEvents').select('kind').where('alertId', '=', alert.id).orderBy('id').execute()).map(
      (e) => e.kind,
    );
    expect(kinds).toEqual(['fired', 'notified']);
    expect(await tdb.db.selectFrom('alerts').select('id').where('ruleId', '=', 'imports.paused').execute()).toHaveLength(1);

    await resumeImport(tdb.db, id);
    await waitFor(
      () => tdb.db.selectFrom('alerts').select('id').where('id', '=', alert.id).where('state', '=', 'resolved').executeTakeFirst(),
      { timeoutMs: 30_000, what: 'the alert resolved' },
    );
    await waitFor(() => hook.received.length >= 2 && smtp.to('lead@desk.test').length >= 2, { timeoutMs: 20_000, what: 'resolution out' });
    await roundsPass(2);
    expect(smtp.to('lead@desk.test').map((m) => m.subject)).toEqual([
      '[KYC Desk · warning] Import paused by a Capa outage',
      '[KYC Desk · resolved] Import paused by a Capa outage',
    ]);
    expect(hook.received.map((r) => (r.json as { event: string }).event)).toEqual(['alert.firing', 'alert.resolved']);
    const all = (await tdb.db.selectFrom('alertEvents').select('kind').where('alertId', '=', alert.id).orderBy('id').execute()).map(
      (e) => e.kind,
    );
    expect(all).toEqual(['fired', 'notified', 'resolved', 'notified']);
  });
});
