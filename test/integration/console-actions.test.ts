import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findUserByEmail, insertUser } from '../../db/repositories/users.js';
import { verifyAuditChain } from '../../db/repositories/audit.js';
import { actionWait } from '../../app/users.server';
import { fetchDetails } from '../../jobs/definitions/fetch-details.js';
import { action as newUserAction, loader as newUserLoader } from '../../app/routes/users.new';
import { action as userAction, loader as userLoader } from '../../app/routes/users.$id';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { call, get, post, signInAs, type Browser } from './console-helpers.js';
import { createConsoleI18n } from '../../app/i18n';

type Said = string | { code: string; values?: Record<string, unknown> };
const english = createConsoleI18n('en');
/** What an English reader sees for a message the page gets (text passes through as it is). */
const say = (m: Said): string => (typeof m === 'string' ? m : english.t(m.code, m.values ?? {}));

let rt: TestRuntime;
let compliance: Browser & { operatorId: string };
let viewer: Browser & { operatorId: string };

beforeAll(async () => {
  rt = await createTestRuntime();
  // The first wait on a queue opens its QueueEvents stream; a job finishing while it connects is
  // missed and reported as "queued" (see the report: jobs/queues.ts could await readiness first).
  await waitFor(
    async () =>
      (await rt.queues.addAndWait(fetchDetails, { userId: 'warm-up', requestId: `warm-${Date.now()}` }, 2000)).state === 'completed',
    { timeoutMs: 20_000, what: 'capa queue warm' },
  );
  compliance = await signInAs(rt.db, 'compliance');
  viewer = await signInAs(rt.db, 'viewer');
});

afterAll(async () => {
  actionWait.ms = 4_000;
  await rt?.close();
});

async function newForm(b: Browser) {
  const r = await call(newUserLoader, get('/users/new', b));
  expect(r.status).toBe(200);
  return r.data.requestId as string;
}

async function createUser(fields: Record<string, string>, b: Browser = compliance) {
  const requestId = fields.requestId ?? (await newForm(b));
  return call(newUserAction, post('/users/new', b, { type: 'INDIVIDUAL', country: 'MX', ...fields, requestId }));
}

const userIdFrom = (location: string | null) => /^\/users\/([^?]+)/.exec(location ?? '')![1]!;

describe('create user', () => {
  it('creates the user, sends it to Capa and issues a link; the user page shows it all', async () => {
    const res = await createUser({ email: 'Ana.Garcia@Example.com', alias: 'Ana', sendLink: 'on' });
    expect(res.status).toBe(302);
    expect(res.location).toMatch(/^\/users\/[0-9a-f-]+\?flash=created$/);
    const id = userIdFrom(res.location);
    const user = await findUserByEmail(rt.db, 'ana.garcia@example.com');
    expect(user?.id).toBe(id);
    expect(user?.externalUserId).toMatch(/^kyc-[0-9a-f]{12}$/); // generated when blank
    expect(user?.capaSync).toBe('created');
    expect(user?.createdBy).toBe(compliance.operatorId);

    // The chained link job lands shortly after; the page (polled by the browser) shows it.
    const page = await waitFor(
      async () => {
        const p = await call(userLoader, get(`/users/${id}`, compliance), { id });
        return p.data.links.length === 1 ? p : null;
      },
      { what: 'the link on the user page' },
    );
    expect(page.data.user.kycState).toBe('LINK_ISSUED');
    expect(page.data.links[0].status).toBe('active');
    expect(page.data.links[0].url).toMatch(/^http/);
    expect(page.data.final).toBe(false);
    // The link is e-mailed by default, so the message joins the timeline once its hook has run.
    const withMessage = await waitFor(
      async () => {
        const p = await call(userLoader, get(`/users/${id}`, compliance), { id });
        return p.data.timeline.some((e: { kind: string }) => e.kind === 'message') ? p : null;
      },
      { what: 'the link e-mail on the timeline' },
    );
    const kinds = new Set(withMessage.data.timeline.map((e: { kind: string }) => e.kind));
    expect(kinds).toEqual(new Set(['job', 'state', 'operator', 'message']));
    const audit = page.data.timeline.find((e: { kind: string }) => e.kind === 'operator');
    expect(audit.title).toMatchObject({ code: 'users:timeline.operator', values: { action: 'user_create', outcome: 'ok' } });
    expect(say(audit.title)).toMatch(/: created the customer — ok$/);
  });

  it('validates with the shared schema and reports duplicates as form errors', async () => {
    const bad = await createUser({ email: 'not-an-email', type: 'PERSON' });
    expect(bad.status).toBe(400);
    expect(bad.data.errors.email).toMatchObject({ code: 'users:errors.email_invalid', values: { problem: 'no_at' } });
    expect(say(bad.data.errors.email)).toBe('Enter a valid e-mail address: it has no @.');
    expect(bad.data.errors.type).toEqual({ code: 'users:errors.type' });

    await createUser({ email: 'dupe@example.com', externalUserId: 'ext-dupe-1' });
    const sameEmail = await createUser({ email: 'DUPE@example.com' });
    expect(sameEmail.status).toBe(400);
    expect(say(sameEmail.data.errors.email)).toMatch(/already exists/);
    const sameExt = await createUser({ email: 'other@example.com', externalUserId: 'ext-dupe-1' });
    expect(sameExt.status).toBe(400);
    expect(say(sameExt.data.errors.externalUserId)).toMatch(/already taken/);
  });

  it('turns a unique-constraint race into the same form error', async () => {
    // Another writer (an import) inserts between our check and our insert: simulate by racing.
    const requestIds = [await newForm(compliance), await newForm(compliance)];
    const [a, b] = await Promise.all(requestIds.map((requestId) => createUser({ email: 'race@example.com', requestId })));
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([302, 400]);
    const loser = a.status === 400 ? a : b;
    expect(say(loser.data.errors.email)).toMatch(/already exists/);
  });

  it('a double click (same request id) creates one user and shows the same page', async () => {
    const requestId = await newForm(compliance);
    const [a, b] = await Promise.all([
      createUser({ email: 'double@example.com', requestId }),
      createUser({ email: 'double@example.com', requestId }),
    ]);
    expect(a.status).toBe(302);
    expect(b.status).toBe(302);
    expect(userIdFrom(a.location)).toBe(userIdFrom(b.location));
    const n = await rt.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('email', '=', 'double@example.com')
      .executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(1);
    // A later resubmission of the same form also lands on that user.
    const c = await createUser({ email: 'double@example.com', requestId });
    expect(userIdFrom(c.location)).toBe(userIdFrom(a.location));
  });

  it('shows Capa refusals in plain words', async () => {
    // Capa already has this e-mail (created directly, as another partner tool would have).
    await rt.capa.createUser({ type: 'INDIVIDUAL', email: 'taken-at-capa@example.com', externalUserId: 'elsewhere-1' });
    const res = await createUser({ email: 'taken-at-capa@example.com' });
    expect(res.location).toMatch(/flash=created-failed$/);
    const id = userIdFrom(res.location);
    const page = await call(userLoader, get(`/users/${id}`, compliance), { id });
    expect(page.data.user.capaSync).toBe('failed');
    // Capa's refusal as its code: the page words it; Capa's own body never reaches it.
    expect(page.data.user.capaSyncError).toEqual({ code: 'capa:errors.already_exists', values: {} });
  });
});

describe('user actions', () => {
  let userId: string;

  beforeAll(async () => {
    const res = await createUser({ email: 'actions@example.com', country: 'DO' });
    userId = userIdFrom(res.location);
    await waitFor(
      async () => (await call(userLoader, get(`/users/${userId}`, compliance), { id: userId })).data.user.capaSync === 'created',
    );
  });

  const act = (b: Browser, fields: Record<string, string>) => call(userAction, post(`/users/${userId}`, b, fields), { id: userId });

  it('generates a link, and a resend supersedes it; a double click makes one link', async () => {
    const first = await act(compliance, { intent: 'link', country: 'DO', requestId: 'req-link-00001' });
    expect(first.data.tone).toBe('ok');
    expect(first.data.code).toBe('users:actions.link_generated_emailed');
    expect(say(first.data)).toBe('KYC link generated. It is being e-mailed to the customer.');
    expect(first.data.link).toMatch(/^http/);
    const [r1, r2] = await Promise.all([
      act(compliance, { intent: 'link', country: 'DO', requestId: 'req-link-00002' }),
      act(compliance, { intent: 'link', country: 'DO', requestId: 'req-link-00002' }),
    ]);
    expect(r1.data.link).toBe(r2.data.link);
    expect(say(r1.data)).toMatch(/previous one is superseded/);
    const page = await call(userLoader, get(`/users/${userId}`, compliance), { id: userId });
    expect(page.data.links.map((l: { status: string }) => l.status)).toEqual(['active', 'superseded']);
    expect(page.data.links[0].url).toBe(r1.data.link);
  });

  it('the sandbox outcome reaches the user page (webhook → VERIFIED), then fetch details shows the sections', async () => {
    const capaUserId = (await rt.db.selectFrom('users').select('capaUserId').where('id', '=', userId).executeTakeFirstOrThrow())
      .capaUserId!;
    rt.sandbox.setOutcome(capaUserId, 'VERIFIED');
    const page = await waitFor(
      async () => {
        const p = await call(userLoader, get(`/users/${userId}`, compliance), { id: userId });
        return p.data.user.kycState === 'VERIFIED' ? p : null;
      },
      { what: 'VERIFIED on the user page', timeoutMs: 15_000 },
    );
    const hook = page.data.timeline.find((e: { kind: string; title: Said }) => e.kind === 'webhook' && /VERIFIED_USER/.test(say(e.title)));
    expect(hook).toBeTruthy();
    expect(hook.facts.map(([k, v]: [Said, Said]) => [say(k), say(v)])).toContainEqual(['signature', 'valid']);

    const f = await act(compliance, { intent: 'fetch', requestId: 'req-fetch-0001' });
    expect(f.data.tone).toBe('ok');
    expect(say(f.data)).toMatch(/^Capa says .*; state (changed to|stays) Verified\.$/);
    const after = await call(userLoader, get(`/users/${userId}`, compliance), { id: userId });
    expect(after.data.final).toBe(true);
    const titles = after.data.details.sections.map((s: { title: string }) => english.t(s.title));
    expect(titles).toEqual(expect.arrayContaining(['Summary', 'ID document', 'Face match', 'Liveness', 'Fraud', 'AML hits']));
  });

  it('masks personal data for viewers and refuses their actions with 403', async () => {
    const cp = await call(userLoader, get(`/users/${userId}`, compliance), { id: userId });
    const vp = await call(userLoader, get(`/users/${userId}`, viewer), { id: userId });
    expect(cp.data.user.email).toBe('actions@example.com');
    expect(vp.data.user.email).toMatch(/^a•+@example\.com$/);
    expect(vp.data.canAct).toBe(false);
    expect(vp.data.links.every((l: { url: string }) => !l.url.startsWith('http'))).toBe(true);
    const rows = (p: typeof cp, title: string): Record<string, unknown> =>
      Object.fromEntries(
        (p.data.details.sections.find((s: { title: string }) => english.t(s.title) === title)?.rows ?? []).map(([k, v]: [Said, Said]) => [
          say(k),
          typeof v === 'string' ? v : say(v),
        ]),
      );
    const idDoc = (p: typeof cp) => rows(p, 'ID document');
    const c = idDoc(cp);
    const v = idDoc(vp);
    expect(v.Number).not.toBe(c.Number);
    expect(v.Number).toMatch(/^•+.{2}$/);
    expect(v['Birth date']).toMatch(/^\d{4}-••-••$|^—$/);
    const media = rows(vp, 'Media');
    for (const val of Object.values(media)) expect(String(val)).not.toMatch(/^https?:/);
    expect(JSON.stringify(vp.data)).not.toContain('actions@example.com');

    const attempts: Array<Record<string, string>> = [
      { intent: 'link', country: 'MX', requestId: 'req-viewer-01' },
      { intent: 'fetch', requestId: 'req-viewer-02' },
    ];
    for (const fields of attempts) {
      const r = await act(viewer, fields);
      expect(r.status).toBe(403);
    }
    const denied = await rt.db
      .selectFrom('auditLog')
      .selectAll()
      .where('operatorId', '=', viewer.operatorId)
      .where('outcome', '=', 'denied')
      .execute();
    expect(denied.length).toBeGreaterThanOrEqual(2);
  });

  it('a cross-site post is refused before anything is enqueued', async () => {
    const before = await rt.db
      .selectFrom('kycLinks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('userId', '=', userId)
      .executeTakeFirstOrThrow();
    const r = await call(
      userAction,
      post(
        `/users/${userId}`,
        compliance,
        { intent: 'link', country: 'MX', requestId: 'req-evil-0001' },
        { origin: 'https://evil.example' },
      ),
      { id: userId },
    );
    expect(r.status).toBe(403);
    const r2 = await call(
      userAction,
      post(`/users/${userId}`, compliance, { intent: 'link', country: 'MX', requestId: 'req-evil-0002' }, { csrf: null }),
      { id: userId },
    );
    expect(r2.status).toBe(403);
    const after = await rt.db
      .selectFrom('kycLinks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('userId', '=', userId)
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
  });

  it('says "queued" when no worker answers in time, and the outcome lands later', async () => {
    await rt.workers!.close(5000);
    rt.workers = null;
    actionWait.ms = 300;
    const u = await insertUser(rt.db, { email: 'slow@example.com', type: 'INDIVIDUAL', country: 'MX', createdBy: compliance.operatorId });
    const r = await call(userAction, post(`/users/${u.id}`, compliance, { intent: 'create', requestId: 'req-create-slow1' }), { id: u.id });
    expect(r.data.tone).toBe('info');
    expect(say(r.data)).toMatch(/^Queued/);
    const audit = await rt.db
      .selectFrom('auditLog')
      .selectAll()
      .where('targetId', '=', u.id)
      .where('action', '=', 'user.capa_create')
      .executeTakeFirstOrThrow();
    expect(audit.outcome).toBe('queued');
    await rt.startWorkers();
    await waitFor(async () => (await call(userLoader, get(`/users/${u.id}`, compliance), { id: u.id })).data.user.capaSync === 'created', {
      what: 'queued create to land',
    });
    actionWait.ms = 4_000;
  });

  it('a 404 for an unknown user', async () => {
    const r = await call(userLoader, get('/users/nope', compliance), { id: 'nope' });
    expect(r.status).toBe(404);
  });

  it('every action above is in the audit log and the chain verifies', async () => {
    const rows = await rt.db.selectFrom('auditLog').select(['action', 'outcome']).where('targetId', '=', userId).execute();
    const actions = rows.map((r) => `${r.action}:${r.outcome}`);
    expect(actions).toEqual(expect.arrayContaining(['user.create:ok', 'link.generate:ok', 'link.resend:ok', 'details.fetch:ok']));
    expect((await verifyAuditChain(rt.db)).ok).toBe(true);
  });
});
