import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { CLIENT_ADDRESS_HEADER } from '../../lib/client-address.js';
import { logger } from '../../lib/logger.js';
import { runOperatorsCli } from '../../server/operators-cli.js';
import { setServices } from '../../app/services.server';
import { BACKGROUND_HEADER, requireOperator, sessionHeadersFor } from '../../app/auth.server';
import { action as loginAction } from '../../app/routes/login';
import { action as mfaAction, loader as mfaLoader } from '../../app/routes/auth.mfa._index';
import { action as enrolAction, loader as enrolLoader } from '../../app/routes/auth.mfa.enrol';
import { action as accountAction, loader as accountLoader } from '../../app/routes/account';
import { action as operatorsAction, loader as operatorsLoader } from '../../app/routes/admin.operators';
import { createTestDb, redisUrl, type TestDb } from '../support/runtime.js';
import { call, get, makeOperator, ORIGIN, PASSWORD, post, type Browser } from './console-helpers.js';

/**
 * Password sign-in with a second factor, through the real route modules: enrolment forced by
 * MFA_REQUIRED, TOTP with a code computed from the secret the page shows, replay refused,
 * recovery codes that work once, throttling per account and per client address, and sessions
 * that polling does not keep alive.
 */

let t: TestDb;
let queues: Queues;

beforeAll(async () => {
  t = await createTestDb();
  queues = new Queues({ redis: redisUrl(), prefix: 'tmfa' });
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: 'tmfa',
    PUBLIC_URL: ORIGIN,
    LOG_LEVEL: 'silent',
    MFA_REQUIRED: 'admin,compliance',
  });
  setServices({ env, db: t.db, queues, dataKeys: parseDataKeys(undefined), logger });
});

afterAll(async () => {
  setServices(undefined);
  await queues.close();
  await t.close();
});

const sessionCookie = (headers: Headers) =>
  headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .find((c) => c.startsWith('kyc_session=') && c !== 'kyc_session=')!;

/** Password step: returns the pending browser and where the sign-in sent it. */
async function password(email: string, headers: Record<string, string> = {}) {
  const r = await call(loginAction, post('/login', null, { email, password: PASSWORD, next: '/users' }, { headers }));
  return { r, b: r.status === 302 ? ({ cookie: sessionCookie(r.headers), csrf: '', role: null } as Browser) : null };
}

/** Loads a second-factor page and takes the CSRF token it hands out. */
async function page(loader: typeof mfaLoader | typeof enrolLoader, path: string, b: Browser) {
  const r = await call(loader, get(path, b));
  expect(r.status).toBe(200);
  return { ...b, csrf: r.data.csrf as string, data: r.data };
}

const signedIn = (b: Browser) =>
  requireOperator(get('/', b), 'viewer').then(
    (w) => w,
    (e: Response) => e,
  );

/** A code the app would show `offsetSteps` periods from now. */
const codeAt = (secret: string, offsetSteps = 0): Promise<string> =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 });

async function mfaAudits(operatorId: string) {
  return t.db
    .selectFrom('auditLog')
    .selectAll()
    .where('action', '=', 'auth.mfa')
    .where('targetId', '=', operatorId)
    .orderBy('id', 'asc')
    .execute();
}

describe('second factor for password sign-in', () => {
  let op: { id: string; email: string };
  let secret: string;
  let recovery: string[];

  it('sends an admin without a second factor to set one up; the half-signed-in session opens nothing', async () => {
    op = await makeOperator(t.db, 'admin');
    const { r, b } = await password(op.email);
    expect(r.location).toBe('/auth/mfa/enrol?next=%2Fusers');
    expect(((await signedIn(b!)) as Response).status).toBe(302);
    // The second-factor page sends this stage on to enrolment.
    expect((await call(mfaLoader, get('/auth/mfa?next=/users', b))).location).toBe('/auth/mfa/enrol?next=%2Fusers');
  });

  it('enrols TOTP with a code computed from the secret shown as text, and shows ten recovery codes once', async () => {
    const { b } = await password(op.email);
    const p = await page(enrolLoader, '/auth/mfa/enrol?next=/users', b!);
    secret = (p.data.totp.secret as string).replace(/\s/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(p.data.totp.uri).toContain(`otpauth://totp/`);
    expect(p.data.totp.qr).toMatch(/^data:image\/svg\+xml;base64,/);
    // The same secret on reload (a half-scanned code keeps working).
    expect((await page(enrolLoader, '/auth/mfa/enrol', b!)).data.totp.secret).toBe(p.data.totp.secret);

    const wrong = await call(enrolAction, post('/auth/mfa/enrol', p, { intent: 'totp', code: '000000', next: '/users' }));
    expect(wrong.status).toBe(400);
    expect(wrong.data.code).toBe('mfa.totp_wrong');

    const ok = await call(enrolAction, post('/auth/mfa/enrol', p, { intent: 'totp', code: await codeAt(secret), next: '/users' }));
    expect(ok.status, JSON.stringify(ok.data)).toBe(200);
    recovery = ok.data.recoveryCodes;
    expect(recovery).toHaveLength(10);
    expect(new Set(recovery).size).toBe(10);
    const full = { cookie: sessionCookie(ok.headers), csrf: '', role: null };
    expect(((await signedIn(full)) as { operator: { id: string } }).operator.id).toBe(op.id);
    // The pending session's cookie is dead: a new session was issued (rotation).
    expect(((await signedIn(b!)) as Response).status).toBe(302);
    const s = await t.db.selectFrom('sessions').selectAll().where('operatorId', '=', op.id).where('stage', '=', 'full').execute();
    expect(s.map((x) => x.method)).toEqual(['password+totp']);
    // Stored hashed and encrypted-or-plain JSON, never the codes themselves.
    const stored = await t.db.selectFrom('operatorRecoveryCodes').select('codeHash').where('operatorId', '=', op.id).execute();
    expect(stored.map((x) => x.codeHash)).not.toContain(recovery[0]);
  });

  it('asks for the code at the next sign-in, refuses a wrong one and the one already used (replay)', async () => {
    const { r, b } = await password(op.email);
    expect(r.location).toBe('/auth/mfa?next=%2Fusers');
    const p = await page(mfaLoader, '/auth/mfa?next=/users', b!);
    expect(p.data).toMatchObject({ totp: true, passkeys: false });

    const wrong = await call(mfaAction, post('/auth/mfa', p, { intent: 'totp', code: '123456', next: '/users' }));
    expect(wrong.data.code).toBe('mfa.totp_wrong');
    // The code that confirmed enrolment belongs to a time step already used.
    const replay = await call(mfaAction, post('/auth/mfa', p, { intent: 'totp', code: await codeAt(secret), next: '/users' }));
    expect(replay.status).toBe(400);
    expect(replay.data.code).toBe('mfa.totp_used');

    const next = await codeAt(secret, 1);
    const ok = await call(mfaAction, post('/auth/mfa', p, { intent: 'totp', code: next, next: '/users' }));
    expect(ok.status).toBe(302);
    expect(ok.location).toBe('/users');
    expect(
      ((await signedIn({ cookie: sessionCookie(ok.headers), csrf: '', role: null })) as { operator: { id: string } }).operator.id,
    ).toBe(op.id);

    // That code again, from a new sign-in: a replay.
    const again = await password(op.email);
    const p2 = await page(mfaLoader, '/auth/mfa', again.b!);
    const replay2 = await call(mfaAction, post('/auth/mfa', p2, { intent: 'totp', code: next, next: '/' }));
    expect(replay2.data.code).toBe('mfa.totp_used');

    const reasons = (await mfaAudits(op.id)).map((a) => JSON.parse(a.detail!).reason ?? a.outcome);
    expect(reasons).toEqual(expect.arrayContaining(['wrong code', 'replay', 'ok']));
  });

  it('accepts a recovery code once (any case, spaces or dashes), never twice', async () => {
    const code = recovery[3]!;
    const first = await password(op.email);
    const p = await page(mfaLoader, '/auth/mfa', first.b!);
    const ok = await call(
      mfaAction,
      post('/auth/mfa', p, { intent: 'recovery', code: ` ${code.toUpperCase().replace(/-/g, ' ')} `, next: '/' }),
    );
    expect(ok.status).toBe(302);
    const second = await password(op.email);
    const p2 = await page(mfaLoader, '/auth/mfa', second.b!);
    const used = await call(mfaAction, post('/auth/mfa', p2, { intent: 'recovery', code, next: '/' }));
    expect(used.status).toBe(400);
    expect(used.data.code).toBe('mfa.recovery_wrong');
    const left = await t.db
      .selectFrom('operatorRecoveryCodes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('operatorId', '=', op.id)
      .where('usedAt', 'is', null)
      .executeTakeFirstOrThrow();
    expect(Number(left.n)).toBe(9);
  });

  it('throttles wrong second-factor codes per account', async () => {
    const { b } = await password(op.email);
    const p = await page(mfaLoader, '/auth/mfa', b!);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push((await call(mfaAction, post('/auth/mfa', p, { intent: 'totp', code: String(100000 + i), next: '/' }))).status);
    }
    expect(statuses).toContain(429);
    // Even the right code waits now.
    const blocked = await call(mfaAction, post('/auth/mfa', p, { intent: 'totp', code: await codeAt(secret, -1), next: '/' }));
    expect(blocked.status).toBe(429);
    expect(blocked.data).toMatchObject({ code: 'mfa.throttled', values: { seconds: expect.any(Number) } });
  });

  it('refuses a second-factor form without the session token, or from another site', async () => {
    const { b } = await password(op.email);
    const noToken = await call(mfaAction, post('/auth/mfa', b, { intent: 'totp', code: '123456' }, { csrf: null }));
    expect(noToken.status).toBe(403);
    const p = await page(mfaLoader, '/auth/mfa', b!);
    const cross = await call(mfaAction, post('/auth/mfa', p, { intent: 'totp', code: '123456' }, { origin: 'https://evil.example' }));
    expect(cross.status).toBe(403);
  });

  it('an admin (here the CLI) resets the factors of a person who lost them: sessions end, set-up is asked again', async () => {
    const still = await password(op.email);
    expect(still.r.location).toBe('/auth/mfa?next=%2Fusers');
    const out: string[] = [];
    const code = await runOperatorsCli(['reset-factors', op.email], t.db, {
      out: (m) => out.push(m),
      err: (m) => out.push(m),
      prompt: async () => '',
    });
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/Second factors removed/);
    expect(await t.db.selectFrom('operatorTotp').selectAll().where('operatorId', '=', op.id).execute()).toEqual([]);
    expect(await t.db.selectFrom('operatorRecoveryCodes').selectAll().where('operatorId', '=', op.id).execute()).toEqual([]);
    // The half-signed-in session from before the reset is gone too.
    expect((await call(mfaLoader, get('/auth/mfa', still.b))).status).toBe(302);
    expect((await password(op.email)).r.location).toBe('/auth/mfa/enrol?next=%2Fusers');
    const a = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'operator.factors_reset')
      .where('targetId', '=', op.id)
      .execute();
    expect(a).toHaveLength(1);
  });

  it('lets a viewer in with a password alone (MFA_REQUIRED names admin and compliance only)', async () => {
    const v = await makeOperator(t.db, 'viewer');
    const { r } = await password(v.email);
    expect(r.location).toBe('/users');
  });
});

describe('throttle per client address', () => {
  it('slows one address that fails across many accounts, and only that address', async () => {
    const ip = { [CLIENT_ADDRESS_HEADER]: '203.0.113.9' };
    const statuses: number[] = [];
    // Never more than 3 failures per account: only the per-address limit can trip.
    for (let i = 0; i < 24; i++) {
      const r = await call(
        loginAction,
        post('/login', null, { email: `victim${i % 8}@desk.test`, password: 'wrong-password-1' }, { headers: ip }),
      );
      statuses.push(r.status);
    }
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(21)).toContain(429);
    const good = await makeOperator(t.db, 'viewer');
    expect((await password(good.email, ip)).r.status).toBe(429);
    // Another address is not affected.
    expect((await password(good.email, { [CLIENT_ADDRESS_HEADER]: '198.51.100.7' })).r.status).toBe(302);
  });
});

describe('sessions and polling', () => {
  it('a polling request is answered but does not keep an idle session alive', async () => {
    const v = await makeOperator(t.db, 'viewer');
    const { b } = await password(v.email);
    const seen = async () =>
      (await t.db.selectFrom('sessions').select('lastSeenAt').where('operatorId', '=', v.id).executeTakeFirstOrThrow()).lastSeenAt;
    const back = (min: number) =>
      t.db
        .updateTable('sessions')
        .set({ lastSeenAt: new Date(Date.now() - min * 60_000).toISOString() })
        .where('operatorId', '=', v.id)
        .execute();
    await back(20);
    const before = await seen();
    const poll = get('/imports/x/progress', b, { [BACKGROUND_HEADER]: '1' });
    await expect(requireOperator(poll, 'viewer')).resolves.toBeTruthy();
    expect(await seen()).toBe(before);
    // A real request does count.
    await requireOperator(get('/users', b), 'viewer');
    expect(Date.parse(await seen())).toBeGreaterThan(Date.parse(before));
    // Left alone past the idle limit with the page still polling: the poll is refused too.
    await back(31);
    expect(
      ((await requireOperator(get('/imports/x/progress', b, { [BACKGROUND_HEADER]: '1' }), 'viewer').catch((e) => e)) as Response).status,
    ).toBe(302);
  });
});

describe('/account: factors, recovery codes and sessions', () => {
  it('lists where the operator is signed in, keeps the last required factor, renews recovery codes, signs out everywhere', async () => {
    const op = await makeOperator(t.db, 'compliance');
    // Set up TOTP on the way in.
    const ua = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36' };
    const first = await password(op.email, ua);
    const p = await page(enrolLoader, '/auth/mfa/enrol', first.b!);
    const secret = (p.data.totp.secret as string).replace(/\s/g, '');
    const enrolled = await call(
      enrolAction,
      post('/auth/mfa/enrol', p, { intent: 'totp', code: await codeAt(secret), next: '/' }, { headers: ua }),
    );
    const oldCodes: string[] = enrolled.data.recoveryCodes;
    const laptop = { cookie: sessionCookie(enrolled.headers), csrf: '', role: null } as Browser;
    // A second device.
    const second = await password(op.email);
    const p2 = await page(mfaLoader, '/auth/mfa', second.b!);
    const phoneIn = await call(mfaAction, post('/auth/mfa', p2, { intent: 'totp', code: await codeAt(secret, 1), next: '/' }));
    const phone = { cookie: sessionCookie(phoneIn.headers), csrf: '', role: null } as Browser;

    const acc = await call(accountLoader, get('/account', laptop));
    expect(acc.status).toBe(200);
    const sec = acc.data.security;
    expect(sec.factors).toEqual({ totp: true, passkeys: 0, recoveryCodesLeft: 10 });
    expect(sec.required).toBe(true);
    expect(sec.sessions).toHaveLength(2);
    expect(sec.sessions.filter((x: { current: boolean }) => x.current)).toHaveLength(1);
    expect(sec.sessions.find((x: { current: boolean }) => x.current)).toMatchObject({
      device: 'Chrome 131 · Linux',
      method: 'password+totp',
    });
    const csrf = (await requireOperator(get('/account', laptop), 'viewer')).session.csrfToken;
    const me = { ...laptop, csrf };

    const keep = await call(accountAction, post('/account', me, { intent: 'security-remove-totp' }));
    expect(keep.status).toBe(400);
    expect(keep.data.code).toBe('account:security.last_factor');

    const renewed = await call(accountAction, post('/account', me, { intent: 'security-recovery-codes' }));
    expect(renewed.status).toBe(200);
    expect(renewed.data.recoveryCodes).toHaveLength(10);
    // The old codes stopped working.
    const again = await password(op.email);
    const p3 = await page(mfaLoader, '/auth/mfa', again.b!);
    expect((await call(mfaAction, post('/auth/mfa', p3, { intent: 'recovery', code: oldCodes[0]!, next: '/' }))).data.code).toBe(
      'mfa.recovery_wrong',
    );

    const out = await call(accountAction, post('/account', me, { intent: 'security-sign-out-everywhere' }));
    expect(out.status).toBe(302);
    expect(out.location).toBe('/login?flash=signed-out');
    for (const b of [laptop, phone]) expect(((await signedIn(b)) as Response).status).toBe(302);
    const audit = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'auth.sign_out_everywhere')
      .where('operatorId', '=', op.id)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.detail!).sessionsEnded).toBeGreaterThanOrEqual(2);
  });
});

describe('an admin ends access at once', () => {
  /** An admin's signed-in browser (its own second factor is not what these tests are about). */
  async function adminBrowser(): Promise<Browser> {
    const admin = await makeOperator(t.db, 'admin');
    const cookie = sessionCookie(await sessionHeadersFor(new Request(ORIGIN), admin.id));
    const who = await requireOperator(get('/', { cookie, csrf: '', role: null }), 'admin');
    return { cookie, csrf: who.session.csrfToken, role: 'admin' };
  }

  it('disabling an operator ends their sessions within one request', async () => {
    const admin = await adminBrowser();
    const v = await makeOperator(t.db, 'viewer');
    const { b } = await password(v.email);
    await expect(requireOperator(get('/users', b), 'viewer')).resolves.toBeTruthy();
    const r = await call(operatorsAction, post('/admin/operators', admin, { intent: 'disable', id: v.id }));
    expect(r.status).toBe(200);
    // The very next request of theirs is refused.
    expect(((await signedIn(b!)) as Response).status).toBe(302);
    expect((await password(v.email)).r.status).toBe(401);
  });

  it('an admin resets the second factors of a person on /admin/operators (audited), or ends their sessions', async () => {
    const admin = await adminBrowser();
    const c = await makeOperator(t.db, 'compliance');
    const first = await password(c.email);
    const p = await page(enrolLoader, '/auth/mfa/enrol', first.b!);
    const enrolled = await call(
      enrolAction,
      post('/auth/mfa/enrol', p, { intent: 'totp', code: await codeAt((p.data.totp.secret as string).replace(/\s/g, '')), next: '/' }),
    );
    const b = { cookie: sessionCookie(enrolled.headers), csrf: '', role: null } as Browser;

    const listed = await call(operatorsLoader, get('/admin/operators', admin));
    expect(listed.data.identity.factors[c.id]).toEqual({ totp: true, passkeys: 0, recoveryCodesLeft: 10 });
    expect(listed.data.identity.sessions[c.id]).toBe(1);

    // A viewer cannot do it.
    const viewer = await makeOperator(t.db, 'viewer');
    const vb = await password(viewer.email);
    const vcsrf = (await requireOperator(get('/', vb.b), 'viewer')).session.csrfToken;
    expect(
      (await call(operatorsAction, post('/admin/operators', { ...vb.b!, csrf: vcsrf }, { intent: 'reset-factors', id: c.id }))).status,
    ).toBe(403);

    const r = await call(operatorsAction, post('/admin/operators', admin, { intent: 'reset-factors', id: c.id }));
    expect(r.status).toBe(200);
    expect(r.data).toMatchObject({ tone: 'ok', code: 'operators:identity.reset_done', values: { email: c.email } });
    expect(((await signedIn(b)) as Response).status).toBe(302);
    expect((await call(operatorsLoader, get('/admin/operators', admin))).data.identity.factors[c.id]).toBeUndefined();
    const audit = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'operator.factors_reset')
      .where('targetId', '=', c.id)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.detail!)).toMatchObject({ totp: true, recoveryCodesLeft: 10, sessionsEnded: 1 });
    // Set-up is asked again at the next sign-in.
    expect((await password(c.email)).r.location).toBe('/auth/mfa/enrol?next=%2Fusers');

    // Sign out everywhere, without touching the factors.
    const again = await password(viewer.email);
    const out = await call(operatorsAction, post('/admin/operators', admin, { intent: 'sign-out', id: viewer.id }));
    expect(out.data).toMatchObject({ tone: 'ok', code: 'operators:identity.signed_out', values: { count: 2 } });
    for (const x of [vb.b!, again.b!]) expect(((await signedIn(x)) as Response).status).toBe(302);
  });
});
