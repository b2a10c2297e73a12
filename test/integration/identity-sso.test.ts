import * as jose from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { findOperatorByEmail } from '../../db/repositories/operators.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { setServices } from '../../app/services.server';
import { requireOperator } from '../../app/auth.server';
import { forgetOidcConfiguration, verifiedEmail } from '../../app/oidc.server';
import { signOutDestination } from '../../app/sso.server';
import { loader as ssoStart } from '../../app/routes/auth.oidc._index';
import { loader as ssoCallback } from '../../app/routes/auth.oidc.callback';
import { action as loginAction } from '../../app/routes/login';
import { action as logoutAction } from '../../app/routes/logout';
import { createTestDb, redisUrl, type TestDb } from '../support/runtime.js';
import { oidcEnv, signInAtIdp, startTestIdp, type Tamper, type TestIdp } from '../support/oidc-provider.js';
import { call, get, makeOperator, ORIGIN, PASSWORD, post, signIn, type Browser } from './console-helpers.js';

/**
 * Single sign-on against a real OpenID provider (oidc-provider in this process): the happy path,
 * role mapping, just-in-time creation, every ID token check the client must make, the state
 * check, unknown and unmapped people, SSO-only mode, and the re-check that ends sessions when
 * the provider takes the role away. Each refusal is audited with its reason.
 */

let t: TestDb;
let queues: Queues;
let idp: TestIdp;

function install(extra: Record<string, string> = {}) {
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: 'tsso',
    PUBLIC_URL: ORIGIN,
    LOG_LEVEL: 'silent',
    ...oidcEnv(idp),
    ...extra,
  });
  forgetOidcConfiguration();
  setServices({ env, db: t.db, queues, dataKeys: parseDataKeys('a'.repeat(64)), logger });
}

beforeAll(async () => {
  t = await createTestDb();
  queues = new Queues({ redis: redisUrl(), prefix: 'tsso' });
  idp = await startTestIdp({ redirectUris: [`${ORIGIN}/auth/oidc/callback`], postLogoutRedirectUris: [`${ORIGIN}/login`] });
});

afterAll(async () => {
  setServices(undefined);
  await idp.close();
  await queues.close();
  await t.close();
});

beforeEach(() => {
  idp.tamper = null;
  install();
});

function setCookies(headers: Headers): string[] {
  return headers.getSetCookie().map((c) => c.split(';')[0]!);
}

/** The whole round trip: /auth/oidc, the provider's login, the callback. */
async function ssoRoundTrip(login: string, mangle?: (callback: URL) => void) {
  const start = await call(ssoStart, get('/auth/oidc?next=/users'));
  expect(start.status).toBe(302);
  expect(start.location).toMatch(new RegExp(`^${idp.issuer}/auth\\?`));
  const authUrl = new URL(start.location!);
  expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authUrl.searchParams.get('state')).toBeTruthy();
  expect(authUrl.searchParams.get('nonce')).toBeTruthy();
  const flowCookie = setCookies(start.headers).find((c) => c.startsWith('kyc_oidc='))!;
  const back = new URL(await signInAtIdp(authUrl.href, login));
  expect(`${back.origin}${back.pathname}`).toBe(`${ORIGIN}/auth/oidc/callback`);
  mangle?.(back);
  const res = await call(ssoCallback, get(`${back.pathname}${back.search}`, { cookie: flowCookie, csrf: '', role: null }));
  const session = setCookies(res.headers).find((c) => c.startsWith('kyc_session=') && c !== 'kyc_session=');
  return { res, browser: session ? ({ cookie: session, csrf: '', role: null } as Browser) : null };
}

/** The Response a guard refused with (the test fails if it let the request through). */
async function refusal(p: Promise<unknown>): Promise<Response> {
  return p.then(
    () => {
      throw new Error('expected the request to be refused');
    },
    (e: Response) => e,
  );
}

async function lastSsoAudit() {
  return t.db.selectFrom('auditLog').selectAll().where('action', '=', 'auth.sso').orderBy('id', 'desc').executeTakeFirstOrThrow();
}

async function expectRefused(r: Awaited<ReturnType<typeof ssoRoundTrip>>, reason: string) {
  expect(r.res.status).toBe(302);
  expect(r.res.location).toBe(`/login?sso=${reason}`);
  expect(r.browser).toBeNull();
  const a = await lastSsoAudit();
  expect(a.outcome).toBe('denied');
  expect(JSON.parse(a.detail!).reason).toBe(reason);
}

describe('single sign-on', () => {
  it('refuses a person the console does not know (no just-in-time creation by default), audited', async () => {
    await expectRefused(await ssoRoundTrip('analyst'), 'unknown_operator');
    expect(await findOperatorByEmail(t.db, 'ana.analyst@corp.test')).toBeUndefined();
  });

  it('signs a known operator in by verified e-mail, gives the mapped role and remembers the subject', async () => {
    const op = await makeOperator(t.db, 'viewer', 'ana.analyst@corp.test');
    const { res, browser } = await ssoRoundTrip('analyst');
    expect(res.status).toBe(302);
    expect(res.location).toBe('/users');
    const who = await requireOperator(get('/users', browser), 'viewer');
    expect(who.operator).toMatchObject({ id: op.id, role: 'compliance' });
    const row = await findOperatorByEmail(t.db, op.email);
    expect(row).toMatchObject({ oidcIssuer: idp.issuer, oidcSubject: 'analyst', role: 'compliance' });
    expect(row!.lastLoginAt).toBeTruthy();
    const a = await lastSsoAudit();
    expect(a).toMatchObject({ outcome: 'ok', operatorId: op.id });
    const roleChange = await t.db.selectFrom('auditLog').selectAll().where('action', '=', 'operator.sso_role').executeTakeFirstOrThrow();
    expect(JSON.parse(roleChange.detail!)).toMatchObject({ from: 'viewer', to: 'compliance', by: 'provider' });
    // The session keeps the provider's tokens encrypted (KYC_DETAILS_KEY is set here).
    const s = await t.db
      .selectFrom('sessions')
      .selectAll()
      .where('operatorId', '=', op.id)
      .where('method', '=', 'oidc')
      .executeTakeFirstOrThrow();
    expect(s.oidcTokens).toMatch(/^enc:v1:/);
  });

  it('matches by subject once linked, even when the e-mail at the provider changes', async () => {
    idp.users.analyst!.email = 'ana.renamed@corp.test';
    try {
      const { browser } = await ssoRoundTrip('analyst');
      const who = await requireOperator(get('/', browser), 'viewer');
      expect(who.operator.email).toBe('ana.analyst@corp.test');
    } finally {
      idp.users.analyst!.email = 'ana.analyst@corp.test';
    }
  });

  it('refuses a known person whose groups map to no role, audited, and ends the sessions they still hold', async () => {
    const op = await makeOperator(t.db, 'compliance', 'oscar.outsider@corp.test');
    const b = await signIn(op.email);
    await expect(requireOperator(get('/', b), 'viewer')).resolves.toBeTruthy();
    await expectRefused(await ssoRoundTrip('outsider'), 'unmapped');
    expect(JSON.parse((await lastSsoAudit()).detail!).sessionsEnded).toBe(1);
    expect((await refusal(requireOperator(get('/', b), 'viewer'))).status).toBe(302);
  });

  it('refuses a disabled operator', async () => {
    const op = await makeOperator(t.db, 'viewer', 'bea.boss@corp.test');
    await t.db.updateTable('operators').set({ disabled: 1 }).where('id', '=', op.id).execute();
    try {
      await expectRefused(await ssoRoundTrip('boss'), 'operator_disabled');
    } finally {
      await t.db.deleteFrom('operators').where('id', '=', op.id).execute();
    }
  });

  it('creates the operator on first sign-in with OIDC_JIT, with the mapped role and no password', async () => {
    install({ OIDC_JIT: 'true' });
    const { res, browser } = await ssoRoundTrip('boss');
    expect(res.location).toBe('/users');
    const who = await requireOperator(get('/', browser), 'admin');
    expect(who.operator).toMatchObject({ email: 'bea.boss@corp.test', name: 'Bea Boss', role: 'admin' });
    const created = await t.db.selectFrom('auditLog').selectAll().where('action', '=', 'operator.sso_create').executeTakeFirstOrThrow();
    expect(JSON.parse(created.detail!)).toMatchObject({ role: 'admin', by: 'provider' });
    // No password: password sign-in fails whatever is typed (an empty one included).
    for (const password of ['', PASSWORD]) {
      const r = await call(loginAction, post('/login', null, { email: 'bea.boss@corp.test', password: password || 'x' }));
      expect(r.status).toBe(401);
    }
  });

  it('with OIDC_JIT still refuses an unverified e-mail and an unmapped person', async () => {
    install({ OIDC_JIT: 'true' });
    await expectRefused(await ssoRoundTrip('unverified'), 'email_unverified');
    idp.users.outsider!.email = 'oscar2@corp.test';
    try {
      await expectRefused(await ssoRoundTrip('outsider'), 'unmapped');
    } finally {
      idp.users.outsider!.email = 'oscar.outsider@corp.test';
    }
    expect(await findOperatorByEmail(t.db, 'uma@corp.test')).toBeUndefined();
    expect(await findOperatorByEmail(t.db, 'oscar2@corp.test')).toBeUndefined();
  });
});

describe('the ID token and the flow are checked', () => {
  const cases: Array<[string, Tamper]> = [
    ['id_token_signature', (c, sign) => sign(c, { otherKey: true })],
    ['id_token_issuer', (c, sign) => sign({ ...c, iss: 'http://evil.example' })],
    ['id_token_audience', (c, sign) => sign({ ...c, aud: 'another-client' })],
    ['id_token_nonce', (c, sign) => sign({ ...c, nonce: 'not-the-nonce-we-sent' })],
    ['id_token_expired', (c, sign) => sign({ ...c, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })],
  ];
  for (const [reason, tamper] of cases) {
    it(`refuses an ID token that fails its check: ${reason}`, async () => {
      idp.tamper = tamper;
      const before = await t.db
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      await expectRefused(await ssoRoundTrip('analyst'), reason);
      const after = await t.db
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
    });
  }

  it('accepts the same token re-signed with the right key and right claims (the tamper hook itself is sound)', async () => {
    idp.tamper = (c, sign) => sign(c);
    const { browser } = await ssoRoundTrip('analyst');
    expect(browser).not.toBeNull();
  });

  it('refuses a callback whose state is not the one this browser was given', async () => {
    await expectRefused(await ssoRoundTrip('analyst', (u) => u.searchParams.set('state', 'forged-state')), 'state_mismatch');
  });

  it('refuses a callback without the flow cookie (another browser, or a replayed link)', async () => {
    const start = await call(ssoStart, get('/auth/oidc'));
    const back = new URL(await signInAtIdp(start.location!, 'analyst'));
    const res = await call(ssoCallback, get(`${back.pathname}${back.search}`));
    expect(res.location).toBe('/login?sso=no_flow');
    expect(JSON.parse((await lastSsoAudit()).detail!).reason).toBe('no_flow');
  });

  it('refuses a code presented twice (the flow cookie is single use and so is the code)', async () => {
    const start = await call(ssoStart, get('/auth/oidc'));
    const flowCookie = setCookies(start.headers).find((c) => c.startsWith('kyc_oidc='))!;
    const back = new URL(await signInAtIdp(start.location!, 'analyst'));
    const first = await call(ssoCallback, get(`${back.pathname}${back.search}`, { cookie: flowCookie, csrf: '', role: null }));
    expect(first.location).toBe('/');
    const again = await call(ssoCallback, get(`${back.pathname}${back.search}`, { cookie: flowCookie, csrf: '', role: null }));
    expect(again.location).toBe('/login?sso=token_exchange_failed');
  });

  it('reports a provider that cannot be reached at the start', async () => {
    install({ OIDC_ISSUER: 'http://127.0.0.1:9' });
    const start = await call(ssoStart, get('/auth/oidc'));
    expect(start.location).toBe('/login?sso=provider_unreachable');
  });

  it('does nothing when single sign-on is not configured', async () => {
    install({ OIDC_ISSUER: '', OIDC_CLIENT_ID: '' });
    expect((await call(ssoStart, get('/auth/oidc'))).location).toBe('/login?sso=not_configured');
  });
});

describe('SSO only, and sessions the provider controls', () => {
  it('turns password sign-in off for everyone but the break-glass admin', async () => {
    const normal = await makeOperator(t.db, 'admin');
    const glass = await makeOperator(t.db, 'admin', 'glass@desk.test');
    install({ SSO_ONLY: 'true', SSO_BREAK_GLASS_EMAIL: 'Glass@Desk.test' });
    const refused = await call(loginAction, post('/login', null, { email: normal.email, password: PASSWORD }));
    expect(refused.status).toBe(403);
    expect(JSON.stringify(refused.data)).toContain('sso_only');
    const audit = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'auth.login')
      .where('targetId', '=', normal.email)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.detail!).reason).toBe('sso only');
    const ok = await call(loginAction, post('/login', null, { email: glass.email, password: PASSWORD }));
    expect(ok.status).toBe(302);
  });

  it('ends the sessions within one request when the provider takes the role away, and follows a changed role', async () => {
    onTestFinished(() => {
      idp.users.analyst!.groups = ['staff', 'kyc-analysts'];
    });
    const op = (await findOperatorByEmail(t.db, 'ana.analyst@corp.test'))!;
    const { browser } = await ssoRoundTrip('analyst');
    const second = (await ssoRoundTrip('analyst')).browser;
    expect((await requireOperator(get('/', browser), 'viewer')).operator.role).toBe('compliance');

    // Promoted at the provider: the next request already has the new role.
    idp.users.analyst!.groups = ['kyc-admins'];
    expect((await requireOperator(get('/', browser), 'viewer')).operator.role).toBe('admin');

    // Removed from every mapped group: this request is refused and every session of theirs ends.
    idp.users.analyst!.groups = ['staff'];
    const refused = await refusal(requireOperator(get('/', browser), 'viewer'));
    expect(refused.status).toBe(302);
    expect(refused.headers.get('location')).toMatch(/^\/login/);
    const again = await refusal(requireOperator(get('/', second), 'viewer'));
    expect(again.status).toBe(302);
    const a = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'auth.sso_recheck')
      .where('operatorId', '=', op.id)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(a.detail!)).toMatchObject({ reason: 'unmapped' });
    // Both sessions opened here, and any left from earlier tests.
    expect(JSON.parse(a.detail!).sessionsEnded).toBeGreaterThanOrEqual(2);
  });

  it('re-checks only when due (OIDC_RECHECK_SECONDS)', async () => {
    install({ OIDC_RECHECK_SECONDS: '3600' });
    const { browser } = await ssoRoundTrip('analyst');
    idp.users.analyst!.groups = ['staff'];
    try {
      // Checked at sign-in, so not again for an hour: the removal is not seen yet.
      await expect(requireOperator(get('/', browser), 'viewer')).resolves.toBeTruthy();
    } finally {
      idp.users.analyst!.groups = ['staff', 'kyc-analysts'];
    }
  });

  it('sign-out of a single sign-on session goes through the provider to end its session too', async () => {
    const { browser } = await ssoRoundTrip('analyst');
    const url = new URL((await signOutDestination(get('/', browser)))!);
    expect(`${url.origin}${url.pathname}`).toBe(`${idp.issuer}/session/end`);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${ORIGIN}/login`);
    const hint = jose.decodeJwt(url.searchParams.get('id_token_hint')!);
    expect(hint.sub).toBe('analyst');
    // The sign-out button: our session ends, and the browser goes on to the provider.
    const who = await requireOperator(get('/', browser), 'viewer');
    const out = await call(logoutAction, post('/logout', { ...browser!, csrf: who.session.csrfToken }, {}));
    expect(out.status).toBe(302);
    expect(out.location).toMatch(new RegExp(`^${idp.issuer}/session/end\\?`));
    expect((await refusal(requireOperator(get('/', browser), 'viewer'))).status).toBe(302);
    // A password session has no provider to visit.
    const op = await makeOperator(t.db, 'viewer');
    expect(await signOutDestination(get('/', await signIn(op.email)))).toBeNull();
  });
});

describe('verified e-mail', () => {
  it("takes email_verified when the provider sends it, else Entra ID's xms_edov", () => {
    expect(verifiedEmail({ email: 'a@corp.test', email_verified: true })).toBe('a@corp.test');
    expect(verifiedEmail({ email: 'a@corp.test', email_verified: false, xms_edov: true })).toBeNull();
    expect(verifiedEmail({ email: 'a@corp.test', xms_edov: true })).toBe('a@corp.test');
    expect(verifiedEmail({ email: 'a@corp.test', xms_edov: false })).toBeNull();
    expect(verifiedEmail({ email: 'a@corp.test' })).toBeNull();
    expect(verifiedEmail({ email_verified: true })).toBeNull();
  });
});
