import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { findImport, commitImport } from '../../db/repositories/imports.js';
import { findUserById, insertUser } from '../../db/repositories/users.js';
import type { Alert } from '../../db/schema.js';
import type { AlertRuleId } from '../../domain/alerts.js';
import { verifyAlertSignature } from '../../jobs/alerts/webhook.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { generateLink } from '../../jobs/definitions/generate-link.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { freePort } from '../setup/global-setup.js';
import { startReceiver, type Receiver } from '../support/capa.js';
import { startProc, waitHttp, type Proc } from '../support/processes.js';
import { createTestDb, redisUrl, waitFor, type TestDb } from '../support/runtime.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';

/**
 * Done when, end to end with real processes (server/web.ts, jobs/worker.ts), the sandbox, SMTP and
 * an HTTP receiver: switching off the sandbox's webhooks, pausing an import with a Capa outage and
 * stopping the worker each raise the right alert within its configured window — and tell the
 * right people — and resolve once fixed. The windows are short here (ALERTS_RULES) so the test
 * does not wait long; each wait's deadline is the rule's window, for-duration and a few
 * evaluation periods.
 */
const EVERY = 1;
const RULES = [
  'webhooks.silent.windowSeconds=4',
  'webhooks.silent.resolveSeconds=1',
  'imports.paused.resolveSeconds=2',
  'workers.none.forSeconds=2',
  'workers.none.resolveSeconds=1',
].join(',');
const SECRET = 'e2e-alert-webhook-secret';
/** Slack for process start-up, a scheduler period and the send job. */
const SLACK_MS = 10_000;
const within = (seconds: number) => seconds * 1000 + 3 * EVERY * 1000 + SLACK_MS;

describe('alerts end to end', () => {
  let tdb: TestDb;
  let sandbox: Sandbox;
  let smtp: TestSmtp;
  let hook: Receiver;
  let queues: Queues;
  let web: Proc;
  let worker: Proc;
  let vars: Record<string, string>;
  const prefix = `ae${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    tdb = await createTestDb('sqlite');
    smtp = await startTestSmtp();
    hook = await startReceiver();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    sandbox = await createSandbox({
      partners: [{ apiKey: 'e2e-alerts-key', webhookSecret: 'e2e-alerts-webhook-secret', webhookUrl: `${base}/webhooks/capa` }],
      timeScale: 0.001,
    });
    vars = {
      PORT: String(port),
      PUBLIC_URL: base,
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl(),
      QUEUE_PREFIX: prefix,
      CAPA_BASE_URL: sandbox.url,
      CAPA_API_KEY: 'e2e-alerts-key',
      CAPA_WEBHOOK_SECRET: 'e2e-alerts-webhook-secret',
      SMTP_URL: smtp.url,
      ALERTS_EVERY_SECONDS: String(EVERY),
      ALERTS_RULES: RULES,
      ALERTS_EMAIL_CRITICAL: 'oncall@desk.test',
      ALERTS_EMAIL_WARNING: 'lead@desk.test',
      ALERTS_WEBHOOK_URL: hook.url,
      ALERTS_WEBHOOK_SECRET: SECRET,
      IMPORT_OUTAGE_THRESHOLD: '3',
      IMPORT_OUTAGE_PROBE_SECONDS: '1',
      NOTIFY_BACKOFF_MS: '100',
      SHUTDOWN_TIMEOUT_MS: '5000',
    };
    const env = parseEnv({ ...vars, NODE_ENV: 'test', LOG_LEVEL: 'silent' });
    queues = new Queues({ redis: env.redis, prefix });
    web = startProc('web', 'server/web.ts', vars);
    worker = startProc('worker', 'jobs/worker.ts', vars);
    await waitHttp(`${base}/healthz`);
    await waitFor(async () => (await queues.queue('capa').getWorkers()).length > 0, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'worker up',
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([web, worker].filter(Boolean).map((p) => p.stop()));
    await queues?.close();
    await hook?.close();
    await smtp?.close();
    await sandbox?.close();
    await tdb?.close();
  });

  const alertOf = (rule: AlertRuleId, state: Alert['state']) =>
    tdb.db
      .selectFrom('alerts')
      .selectAll()
      .where('ruleId', '=', rule)
      .where('state', '=', state)
      .orderBy('pendingSince', 'desc')
      .executeTakeFirst();
  const mailsAbout = (to: string, alert: Alert) => smtp.to(to).filter((m) => m.headers['x-kyc-desk-alert'] === alert.id);
  const postsAbout = (alert: Alert) => hook.received.filter((r) => (r.json as { alert?: { id?: string } })?.alert?.id === alert.id);
  const output = () => `\n--- web ---\n${web.output().slice(-3000)}\n--- worker ---\n${worker.output().slice(-3000)}`;

  it('sandbox webhooks switched off: webhooks.silent fires within its window, tells on-call, and resolves when they flow again', async () => {
    sandbox.setDelivery({ paused: true });
    const u = await insertUser(tdb.db, { email: 'quiet.customer@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    await queues.add(createCapaUser, { userId: u.id });
    await waitFor(async () => (await findUserById(tdb.db, u.id))?.capaUserId, { timeoutMs: 20_000, what: 'customer in Capa' });
    await queues.add(generateLink, { userId: u.id, country: 'MX', requestId: randomUUID(), notify: false });
    const linked = await waitFor(
      async () => {
        const x = await findUserById(tdb.db, u.id);
        return x?.kycState === 'LINK_ISSUED' ? x : null;
      },
      { timeoutMs: 20_000, what: 'link issued' },
    );
    // The customer finishes KYC at Capa; Capa's webhook is held back.
    sandbox.setOutcome(linked.capaUserId!, 'VERIFIED');

    const fired = await waitFor(() => alertOf('webhooks.silent', 'firing'), {
      timeoutMs: within(4),
      what: `webhooks.silent firing${output()}`,
    });
    expect(fired.severity).toBe('critical');
    await waitFor(() => mailsAbout('oncall@desk.test', fired).length === 1 && postsAbout(fired).length === 1, {
      timeoutMs: 20_000,
      what: 'on-call told by e-mail and webhook',
    });
    const [mail] = mailsAbout('oncall@desk.test', fired);
    expect(mail!.subject).toBe("[KYC Desk · critical] Capa's webhooks have gone silent");
    const [post] = postsAbout(fired);
    expect(verifyAlertSignature(SECRET, post!.body, post!.headers['x-kyc-desk-signature'] as string)).toBe(true);
    expect(mailsAbout('lead@desk.test', fired)).toHaveLength(0);

    sandbox.setDelivery({ paused: false });
    await waitFor(async () => (await findUserById(tdb.db, u.id))?.kycState === 'VERIFIED', {
      timeoutMs: 20_000,
      what: 'the held webhook applied',
    });
    await waitFor(
      async () => (await tdb.db.selectFrom('alerts').select('state').where('id', '=', fired.id).executeTakeFirst())?.state === 'resolved',
      {
        timeoutMs: within(1),
        what: 'webhooks.silent resolved',
      },
    );
    await waitFor(() => mailsAbout('oncall@desk.test', fired).length === 2, { timeoutMs: 20_000, what: 'resolution e-mail' });
    expect(mailsAbout('oncall@desk.test', fired)[1]!.subject).toBe("[KYC Desk · resolved] Capa's webhooks have gone silent");
  });

  it('an import paused by a Capa outage: imports.paused fires, tells the warning list, and resolves once the import runs again', async () => {
    sandbox.setFaults({ errorRate: 1 });
    const csv = ['email,country,sendLink', ...Array.from({ length: 6 }, (_, i) => `outage.${i}@example.mx,MX,no`)].join('\n');
    async function* file() {
      yield Buffer.from(csv);
    }
    const staged = await stageImport(tdb.db, {
      source: file(),
      fileName: 'night-batch.csv',
      createdBy: null,
      limits: { maxBytes: 1e6, maxRows: 1e3 },
    });
    await commitImport(tdb.db, staged.importId, null);
    await waitFor(async () => (await findImport(tdb.db, staged.importId))?.pauseKind === 'outage', {
      timeoutMs: 60_000,
      what: `import paused by the outage${output()}`,
    });
    const fired = await waitFor(() => alertOf('imports.paused', 'firing'), { timeoutMs: within(0), what: 'imports.paused firing' });
    expect(fired).toMatchObject({ severity: 'warning', page: `/imports/${staged.importId}` });
    await waitFor(() => mailsAbout('lead@desk.test', fired).length === 1, { timeoutMs: 20_000, what: 'the warning list told' });
    expect(mailsAbout('lead@desk.test', fired)[0]!.text).toContain('night-batch.csv');
    expect(mailsAbout('oncall@desk.test', fired)).toHaveLength(0);

    sandbox.setFaults({});
    await waitFor(async () => (await findImport(tdb.db, staged.importId))?.status === 'completed', {
      timeoutMs: 60_000,
      what: 'the import finished once Capa was back',
    });
    await waitFor(
      async () => (await tdb.db.selectFrom('alerts').select('state').where('id', '=', fired.id).executeTakeFirst())?.state === 'resolved',
      {
        timeoutMs: within(2),
        what: 'imports.paused resolved',
      },
    );
    // One alert for the whole outage, however often the probe resumed and the import paused again.
    expect(await tdb.db.selectFrom('alerts').select('id').where('ruleId', '=', 'imports.paused').execute()).toHaveLength(1);
    await waitFor(() => mailsAbout('lead@desk.test', fired).length === 2, { timeoutMs: 20_000, what: 'resolution e-mail' });
  });

  it('the worker stopped: the web process raises workers.none and tells on-call itself; it resolves when a worker is back', async () => {
    await worker.stop('SIGTERM');
    const fired = await waitFor(() => alertOf('workers.none', 'firing'), { timeoutMs: within(2), what: `workers.none firing${output()}` });
    expect(fired.severity).toBe('critical');
    // No worker can run the send job: the web process delivered these itself.
    await waitFor(() => mailsAbout('oncall@desk.test', fired).length === 1 && postsAbout(fired).length === 1, {
      timeoutMs: 20_000,
      what: 'on-call told without a worker',
    });
    expect(mailsAbout('oncall@desk.test', fired)[0]!.subject).toBe('[KYC Desk · critical] No worker is running');
    const rows = await waitFor(
      async () => {
        const r = await tdb.db.selectFrom('notifications').select(['channel', 'status']).where('alertId', '=', fired.id).execute();
        return r.length === 2 && r.every((x) => x.status === 'sent') ? r : null;
      },
      { what: 'both messages recorded as sent' },
    );
    expect(rows.map((r) => r.channel).sort()).toEqual(['email', 'webhook']);

    worker = startProc('worker', 'jobs/worker.ts', vars);
    await waitFor(
      async () => (await tdb.db.selectFrom('alerts').select('state').where('id', '=', fired.id).executeTakeFirst())?.state === 'resolved',
      {
        timeoutMs: within(1) + 30_000,
        what: 'workers.none resolved',
      },
    );
    await waitFor(() => mailsAbout('oncall@desk.test', fired).length === 2, { timeoutMs: 20_000, what: 'resolution e-mail' });
    expect(postsAbout(fired).map((p) => (p.json as { event: string }).event)).toEqual(['alert.firing', 'alert.resolved']);
  });
});
