import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { insertUser, findUserById, stateHistory } from '../../db/repositories/users.js';
import { listInbox } from '../../db/repositories/inbox-query.js';
import { capaDeliveriesData, capaDeliveryDetail, retryCapaDelivery } from '../../app/capa-log.server.js';
import { inboxDetailData, inboxListData, reprocessDelivery } from '../../app/inbox.server.js';
import { storedErrorMessage } from '../../app/plain-errors.server.js';
import { getFixedT } from '../../app/i18n.js';
import { saveWebhookSettings, settingsData } from '../../app/settings.server.js';
import type { SignedIn } from '../../app/auth.server.js';
import { createTestRuntime, waitFor, WEBHOOK_SECRET, type TestRuntime } from '../support/runtime.js';
import { buildOpsApp, get, serveWebApp, signedInOperator, type Served } from './ops-support.js';

/** A facade's message as an English reader sees it (the catalogue's own words). */
const en = getFixedT('en');
const words = (m: { code: string; values?: Record<string, string | number> } | null | undefined) => (m ? en(m.code, m.values ?? {}) : '');
const req = (path = '/x') => new Request(`http://127.0.0.1${path}`, { method: 'POST' });
function whoOf(o: { id: string; email: string; role: 'viewer' | 'compliance' | 'admin'; csrf: string }): SignedIn {
  return { operator: { id: o.id, email: o.email, name: o.email, role: o.role }, session: { csrfToken: o.csrf } };
}
const form = (f: Record<string, string>) => {
  const fd = new FormData();
  for (const [k, v] of Object.entries(f)) fd.set(k, v);
  return fd;
};

describe('operations views against the real runtime (SQLite, Redis, Capa sandbox, workers)', () => {
  let rt: TestRuntime;
  let admin: SignedIn;
  let viewer: SignedIn;
  let compliance: SignedIn;
  let web: Served;
  let cleanup: () => void;

  async function post(body: string, secret = WEBHOOK_SECRET) {
    const r = await fetch(rt.intakeUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, secret) },
      body,
    });
    return (await r.json()) as { id: number };
  }
  const settled = (id: number) =>
    waitFor(
      async () => {
        const r = await rt.db.selectFrom('webhookInbox').selectAll().where('id', '=', id).executeTakeFirst();
        return r && r.status !== 'received' ? r : null;
      },
      { what: `delivery ${id} settled` },
    );

  beforeAll(async () => {
    rt = await createTestRuntime();
    admin = whoOf(await signedInOperator(rt.db, 'admin'));
    viewer = whoOf(await signedInOperator(rt.db, 'viewer'));
    compliance = whoOf(await signedInOperator(rt.db, 'compliance'));
    const b = await buildOpsApp();
    cleanup = b.cleanup;
    web = await serveWebApp(b.build);
  }, 120_000);
  afterAll(async () => {
    await web?.close();
    await rt?.close();
    cleanup?.();
  });

  it('inbox filters: customer, event, verdict, status, new/repeat, changed, errors — and paging', async () => {
    const u = await insertUser(rt.db, { email: 'inbox-a@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    const created = await post(JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId }));
    await settled(created.id);
    const repeat = await post(JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId }));
    const bad = await fetch(rt.intakeUrl, {
      method: 'POST',
      headers: { 'capa-signature': signBody('{}', 'wrong-secret-xx') },
      body: JSON.stringify({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: u.externalUserId }),
    });
    expect(bad.status).toBe(401);
    const stranger = await post(JSON.stringify({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'nobody-here' }));
    await settled(stranger.id);

    const ids = async (q: Record<string, string>) => (await inboxListData(viewer, new URLSearchParams(q))).rows.map((r) => r.id);
    expect(await ids({ customer: u.externalUserId })).toEqual([repeat.id, created.id]);
    expect(await ids({ customer: u.id })).toContain(created.id); // our id works too
    expect(await ids({ event: 'VERIFIED_USER', verdict: 'valid' })).toEqual([stranger.id]);
    const mismatch = await ids({ verdict: 'mismatch' });
    expect(mismatch).toHaveLength(1);
    expect(await ids({ dup: 'duplicate' })).toEqual([repeat.id]);
    expect(await ids({ dup: 'new', customer: u.externalUserId })).toEqual([created.id]);
    expect(await ids({ status: 'rejected' })).toEqual(mismatch);
    expect(await ids({ changed: '1' })).toEqual([created.id]);
    expect(await ids({ errors: '1', status: 'ignored' })).toEqual([stranger.id]);
    const listed = await inboxListData(viewer, new URLSearchParams({ customer: u.externalUserId }));
    expect(listed.rows[1]).toMatchObject({
      userId: u.id,
      stateFrom: 'NOT_STARTED',
      stateTo: 'IN_PROGRESS',
      signatureVerdict: 'valid',
      duplicateOf: null,
    });
    // Garbage in the URL is dropped, not an error.
    const junk = await inboxListData(
      viewer,
      new URLSearchParams({ verdict: 'nope', status: 'x', sort: 'drop table', page: '-3', size: '7' }),
    );
    expect(junk.total).toBeGreaterThanOrEqual(4);
    expect(junk.params).toMatchObject({ verdict: null, status: null, sort: 'id', page: 1, pageSize: 50 });
    // Paging and sorting happen in SQL.
    const p1 = await listInbox(rt.db, { pageSize: 2, page: 1, sort: 'id', dir: 'asc' });
    const p2 = await listInbox(rt.db, { pageSize: 2, page: 2, sort: 'id', dir: 'asc' });
    expect(p1.rows.map((r) => r.id)).toEqual([created.id, repeat.id]);
    expect(p2.rows[0]!.id).toBeGreaterThan(repeat.id);
    expect(p1.pageCount).toBe(Math.ceil(p1.total / 2));
  });

  it('viewers see the raw body with personal data masked; compliance sees it whole', async () => {
    const body = JSON.stringify({
      type: 'TRANSACTION',
      event: 'COMPLETED_ON_RAMP',
      externalUserId: 'tx-1',
      transactionId: 't-9',
      firstName: 'Mariana',
      lastName: 'Lopez',
    });
    const { id } = await post(body);
    const v = (await inboxDetailData(viewer, id))!;
    expect(v.body.masked).toBe(true);
    expect(v.body.text).not.toContain('Mariana');
    expect(v.body.text).toContain('tx-1');
    const c = (await inboxDetailData(compliance, id))!;
    expect(c.body.text).toContain('Mariana');
    expect(c.reprocessRefusal).toBeNull();
  });

  it('re-process runs the normal worker path, is audited, and is idempotent', async () => {
    const u = await insertUser(rt.db, { email: 'reproc@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    const { id } = await post(JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: u.externalUserId }));
    const first = await settled(id);
    expect(first).toMatchObject({ status: 'processed' });
    const historyBefore = await stateHistory(rt.db, u.id);

    const f = form({ intent: 'reprocess', requestId: 'reprocess-req-0001' });
    const r1 = await reprocessDelivery(req(), admin, id, f);
    expect(r1.tone).toBe('ok');
    // The same form again (double click / resubmit) queues nothing more.
    const r2 = await reprocessDelivery(req(), admin, id, form({ intent: 'reprocess', requestId: 'reprocess-req-0001' }));
    expect(r2.tone).toBe('info');
    const again = await waitFor(
      async () => {
        const r = await rt.db.selectFrom('webhookInbox').selectAll().where('id', '=', id).executeTakeFirst();
        return r && r.status === 'processed' && r.processedAt !== first.processedAt ? r : null;
      },
      { what: 're-processed' },
    );
    // Applied once already: the second run is a no-op (same state before and after).
    expect(first).toMatchObject({ stateFrom: 'NOT_STARTED', stateTo: 'IN_PROGRESS' });
    expect(again).toMatchObject({ stateFrom: 'IN_PROGRESS', stateTo: 'IN_PROGRESS', effect: 'noop', error: null });
    // Nothing moved twice: the state machine made the repeat a no-op.
    expect(await stateHistory(rt.db, u.id)).toEqual(historyBefore);
    expect((await findUserById(rt.db, u.id))?.kycState).toBe('IN_PROGRESS');
    // Exactly one job ran for the two submissions of the same form.
    expect(await rt.queues.queue('webhooks').getJob(`wh-${id}`)).toBeTruthy();
    // A new request re-processes again (a deliberate second click after it finished).
    const r3 = await reprocessDelivery(req(), admin, id, form({ intent: 'reprocess', requestId: 'reprocess-req-0002' }));
    expect(r3.tone).toBe('ok');
    await waitFor(
      async () => {
        const r = await rt.db.selectFrom('webhookInbox').select(['status', 'processedAt']).where('id', '=', id).executeTakeFirst();
        return r?.status === 'processed' && r.processedAt !== again.processedAt;
      },
      { what: 'third run' },
    );
    const audit = await rt.db
      .selectFrom('auditLog')
      .select(['action', 'outcome', 'operatorId'])
      .where('targetType', '=', 'webhook')
      .where('targetId', '=', String(id))
      .orderBy('id')
      .execute();
    // Queued, refused while still waiting (the resubmitted form), queued again.
    expect(audit.map((a) => `${a.action}:${a.outcome}`)).toEqual([
      'webhook.reprocess:queued',
      'webhook.reprocess:denied',
      'webhook.reprocess:queued',
    ]);
    expect(audit.every((a) => a.operatorId === admin.operator.id)).toBe(true);
    // A rejected (unverified) delivery is refused in words, and the refusal is audited.
    const bad = await fetch(rt.intakeUrl, { method: 'POST', body: '{"type":"KYC"}' });
    const badId = ((await bad.json()) as { id: number }).id;
    const refused = await reprocessDelivery(req(), admin, badId, form({ intent: 'reprocess', requestId: 'reprocess-req-0003' }));
    expect(refused).toMatchObject({ tone: 'error' });
    expect(refused).toMatchObject({ code: 'inbox:reprocess.refused.untrusted', values: { id: badId } });
    expect(words(refused)).toMatch(/signature did not verify/);
    expect((await rt.db.selectFrom('webhookInbox').select('status').where('id', '=', badId).executeTakeFirstOrThrow()).status).toBe(
      'rejected',
    );
  });

  it('Capa delivery log: list, detail, retry of a FAILED delivery, 409 and 429 in plain words', async () => {
    rt.sandbox.setDelivery({ dropRate: 1 });
    const failedIds = rt.sandbox.emitEvent({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'capa-log-1' });
    rt.sandbox.setDelivery({ dropRate: 0 });
    const [nid] = failedIds;
    const list = await capaDeliveriesData(compliance, new URLSearchParams({ status: 'FAILED' }));
    expect(list.ok).toBe(true);
    const row = list.rows.find((r) => r.id === nid)!;
    expect(row).toMatchObject({ status: 'FAILED', manualRetryCount: 0, blocked: null });
    const detail = await capaDeliveryDetail(compliance, nid!);
    expect(detail.found && detail.notification.payload.externalUserId).toBe('capa-log-1');

    const ok = await retryCapaDelivery(req(), admin, form({ intent: 'retry', id: nid!, requestId: 'capa-retry-0001' }));
    expect(ok.tone).toBe('ok');
    // Capa delivers it to our intake.
    await waitFor(() => rt.db.selectFrom('webhookInbox').select('id').where('externalUserId', '=', 'capa-log-1').executeTakeFirst(), {
      what: 'redelivered',
    });
    // It is no longer FAILED: Capa answers 409, we say why.
    const conflict = await retryCapaDelivery(req(), admin, form({ intent: 'retry', id: nid!, requestId: 'capa-retry-0002' }));
    expect(conflict.tone).toBe('error');
    expect(conflict.code).toBe('capa-log:refused.not_failed');
    expect(words(conflict)).toMatch(/no longer FAILED/);
    // The same request id again is answered from the ledger, not sent again.
    const before = rt.sandbox.stats().manualRetriesAccepted;
    expect(await retryCapaDelivery(req(), admin, form({ intent: 'retry', id: nid!, requestId: 'capa-retry-0001' }))).toEqual(ok);
    expect(rt.sandbox.stats().manualRetriesAccepted).toBe(before);

    // Someone else (another tool on the same partner key) uses up the 10 per minute.
    for (let i = 0; i < 10; i++) await rt.capa.retryWebhookNotification('does-not-exist').catch(() => {});
    const limited = await retryCapaDelivery(req(), admin, form({ intent: 'retry', id: nid!, requestId: 'capa-retry-0003' }));
    expect(limited).toMatchObject({ code: 'capa-log:refused.per_minute', values: { limit: 10, seconds: expect.any(Number) } });
    expect(words(limited)).toMatch(/limit of 10 manual retries per minute is used up\. Try again in \d+ s/);
    // Now our side knows: the buttons are disabled and nothing more is sent.
    const after = await capaDeliveriesData(compliance, new URLSearchParams());
    expect(after.budget.blockedUntil).not.toBeNull();
    const sentBefore = rt.sandbox.stats().sent429;
    const held = await retryCapaDelivery(req(), admin, form({ intent: 'retry', id: nid!, requestId: 'capa-retry-0004' }));
    expect(held).toMatchObject({ code: 'capa-log:retry.held', values: { limit: 10, untilAt: expect.any(String) } });
    expect(words(held)).toMatch(/^Not sent/);
    expect(rt.sandbox.stats().sent429).toBe(sentBefore);
    const audit = await rt.db
      .selectFrom('auditLog')
      .select(['outcome'])
      .where('action', '=', 'capa.delivery.retry')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.outcome)).toEqual(['ok', 'error', 'error', 'denied']);
  });

  it('webhook settings: set through Capa, stored only when Capa accepts, secrets masked', async () => {
    const bad = await saveWebhookSettings(req(), admin, form({ intent: 'set-url', url: 'not a url' }));
    expect(bad.errors?.url).toBe('settings:errors.url_invalid');
    expect(en(bad.errors!.url!)).toMatch(/full URL/);
    expect((await settingsData(admin)).current).toBeNull();
    const res = await saveWebhookSettings(req(), admin, form({ intent: 'set-url', url: rt.intakeUrl }));
    expect(res.tone).toBe('ok');
    const s = await settingsData(admin);
    expect(s.current).toMatchObject({ url: rt.intakeUrl, setBy: admin.operator.email });
    expect(rt.sandbox.partners().find((p) => p.apiKey === rt.env.CAPA_API_KEY)?.webhookUrl).toBe(rt.intakeUrl);
    expect(s.secrets).toHaveLength(1);
    expect(s.secrets[0]!.masked).not.toContain(WEBHOOK_SECRET.slice(2, -2));
    expect(s.secrets[0]!.verified30d).toBeGreaterThan(0);
  });

  it('plain words for failed jobs, in both languages', () => {
    const final = (reason: string) => storedErrorMessage(reason, { final: true });
    const conflict = final('Capa createUser failed (HTTP 409 CONFLICT): User with this email already exists');
    expect(conflict).toEqual({ code: 'capa:errors.already_exists', values: {} });
    expect(words(conflict)).toBe('This email or external id already exists in Capa.');
    expect(getFixedT('es')(conflict.code)).toBe('Este correo o id externo ya existe en Capa.');
    // A job that has failed for good is not "going to be retried".
    expect(words(final('Capa getKycDetails failed (timeout TIMEOUT): No complete answer within 10 ms'))).toBe(
      'Capa did not answer in time.',
    );
    expect(words(final('invalid payload for x: Required'))).toMatch(/invalid/);
    // describeCapaError's English, thrown as a job's final failure, is recognised too.
    expect(final('Capa does not know this user.')).toEqual({ code: 'capa:errors.unknown_user', values: {} });
    // Text nobody classified is shown as it was recorded (first line).
    expect(final('something odd\nstack')).toEqual({ code: 'queues:job_errors.other', values: { text: 'something odd' } });
  });

  it('/readyz reports db, Redis, workers per queue and backlog; no worker → degraded, still ready', async () => {
    const r = await get(web.url, '/readyz', null);
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      ok: boolean;
      degraded: string[];
      checks: Record<string, { ok: boolean; perQueue?: Record<string, unknown> }>;
    };
    expect(body.ok).toBe(true);
    expect(body.checks.workers!.ok).toBe(true);
    expect(body.checks.workers!.perQueue!.webhooks).toBeGreaterThan(0);
    expect(body.checks.backlog!.perQueue!.webhooks).toMatchObject({ waiting: expect.any(Number) });
  });

  it('/metrics is Prometheus text with webhooks by verdict, jobs by state, Capa calls and latency', async () => {
    // The web process's own Capa calls (above) are in the shared Redis figures.
    const r = await get(web.url, '/metrics', null);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(await r.text());
    const find = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    expect(find('kyc_webhooks_received', { verdict: 'valid' })[0]!.value).toBeGreaterThan(3);
    expect(find('kyc_webhooks_received', { verdict: 'mismatch' })[0]!.value).toBeGreaterThanOrEqual(1);
    expect(find('kyc_jobs', { queue: 'webhooks', state: 'completed' })[0]!.value).toBeGreaterThan(0);
    expect(find('kyc_queue_workers', { queue: 'webhooks' })[0]!.value).toBeGreaterThan(0);
    const retries = find('kyc_capa_calls_total', { op: 'retryWebhookNotification' });
    expect(retries.reduce((n, s) => n + s.value, 0)).toBeGreaterThanOrEqual(2);
    expect(find('kyc_capa_calls_total', { op: 'retryWebhookNotification', status: '429' }).length).toBe(1);
    const buckets = find('kyc_capa_call_duration_seconds_bucket', { op: 'listWebhookNotifications' });
    expect(buckets.at(-1)!.labels.le).toBe('+Inf');
    expect(buckets.map((b) => b.value)).toEqual([...buckets.map((b) => b.value)].sort((a, b) => a - b));
    expect(find('kyc_capa_call_duration_seconds_count', { op: 'listWebhookNotifications' })[0]!.value).toBe(buckets.at(-1)!.value);
    expect(find('kyc_up', { component: 'redis' })[0]!.value).toBe(1);
    // From a non-loopback address (via a loopback proxy) it is refused without a token.
    const far = await get(web.url, '/metrics', null, { 'x-forwarded-for': '203.0.113.9' });
    expect(far.status).toBe(403);
  });

  it('with no worker connected: /readyz stays ready but reports it, and the Queues page warns', async () => {
    await rt.workers!.close(5000);
    rt.workers = null;
    const body = await waitFor(
      async () => {
        const b = (await (await get(web.url, '/readyz', null)).json()) as {
          ok: boolean;
          degraded: string[];
          checks: { workers: { detail?: string } };
        };
        return b.degraded.includes('workers') ? b : null;
      },
      { what: 'workers reported missing' },
    );
    expect(body.ok).toBe(true);
    expect(body.checks.workers.detail).toMatch(/no worker connected for: .*webhooks/);
    const { queuesData } = await import('../../app/queues.server.js');
    expect((await queuesData(admin)).noWorker).toContain('webhooks');
  });
});

/** A small parser of the Prometheus text format (0.0.4): enough to check every line is valid. */
function parsePrometheus(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( \d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
      let consumed = 0;
      for (let l = re.exec(m[3]); l; l = re.exec(m[3])) {
        labels[l[1]!] = l[2]!;
        consumed += l[0].length;
      }
      if (consumed !== m[3].length) throw new Error(`bad labels: ${line}`);
    }
    const base = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]!) && !types.has(base)) throw new Error(`sample without TYPE: ${line}`);
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}
