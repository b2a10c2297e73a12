import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { verifyAuditChain } from '../../db/repositories/audit.js';
import { countOperators, findOperatorByEmail } from '../../db/repositories/operators.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { bootstrapOperators } from '../../server/bootstrap.js';
import { runOperatorsCli } from '../../server/operators-cli.js';
import { setServices } from '../../app/services.server';
import { canSeePii, requireMutation, requireOperator } from '../../app/auth.server';
import { action as loginAction, loader as loginLoader } from '../../app/routes/login';
import { action as logoutAction } from '../../app/routes/logout';
import { action as setupAction, loader as setupLoader } from '../../app/routes/setup';
import { loader as homeLoader } from '../../app/routes/_index';
import { loader as rootLoader } from '../../app/root';
import { getFixedT } from '../../app/i18n';
import { createTestDb, redisUrl, type TestDb } from '../support/runtime.js';
import { call, cookieFrom, get, makeOperator, ORIGIN, PASSWORD, post, signIn, signInAs } from './console-helpers.js';

let t: TestDb;
let queues: Queues;

/** What the sign-in page shows an English reader for a refusal (a code of the `auth` catalogue). */
const inEnglish = (e: { code: string; values?: Record<string, unknown> }) => getFixedT('en', 'auth')(e.code, e.values ?? {});

beforeAll(async () => {
  t = await createTestDb();
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: 'tauth',
    PUBLIC_URL: ORIGIN,
    LOG_LEVEL: 'silent',
    SESSION_IDLE_MINUTES: '30',
    SESSION_MAX_HOURS: '12',
  });
  queues = new Queues({ redis: env.redis, prefix: 'tauth' });
  setServices({ env, db: t.db, queues, dataKeys: parseDataKeys(undefined), logger });
});

afterAll(async () => {
  setServices(undefined);
  await queues.close();
  await t.close();
});

describe('first admin bootstrap', () => {
  it('prints a one-time setup link that creates the first admin once', async () => {
    const printed: string[] = [];
    const env = parseEnv({ NODE_ENV: 'test', DATABASE_URL: t.url, PUBLIC_URL: ORIGIN });
    const r = await bootstrapOperators(t.db, env, (m) => printed.push(m));
    expect(r.setupUrl).toBeTruthy();
    expect(printed.join('\n')).toContain(r.setupUrl!);
    const token = new URL(r.setupUrl!).searchParams.get('token')!;

    const page = await call(setupLoader, get(`/setup?token=${token}`));
    expect(page.status).toBe(200);
    expect((await call(setupLoader, get('/setup?token=wrong-token-123'))).status).toBe(404);

    // A cross-site post is refused even with the token.
    const evil = await call(
      setupAction,
      post(
        '/setup',
        null,
        { token, email: 'first@desk.test', name: 'First', password: 'first-admin-pw-1' },
        { origin: 'https://evil.example' },
      ),
    );
    expect(evil.status).toBe(403);

    const ok = await call(
      setupAction,
      post('/setup', null, { token, email: 'first@desk.test', name: 'First', password: 'first-admin-pw-1' }),
    );
    expect(ok.status).toBe(302);
    expect(ok.location).toBe('/?flash=welcome');
    expect(cookieFrom(ok)).toMatch(/^kyc_session=/);
    expect((await findOperatorByEmail(t.db, 'first@desk.test'))?.role).toBe('admin');

    // Valid once.
    const again = await call(
      setupAction,
      post('/setup', null, { token, email: 'second@desk.test', name: 'Second', password: 'second-admin-pw' }),
    );
    expect(again.status).toBe(409);
    expect((await call(setupLoader, get(`/setup?token=${token}`))).status).toBe(404);

    // With an operator present, the bootstrap prints nothing.
    const printed2: string[] = [];
    expect(await bootstrapOperators(t.db, env, (m) => printed2.push(m))).toEqual({});
    expect(printed2).toEqual([]);
  });

  it('creates the admin from ADMIN_EMAIL/ADMIN_PASSWORD once, never resetting it', async () => {
    const env = parseEnv({ NODE_ENV: 'test', DATABASE_URL: t.url, ADMIN_EMAIL: 'Boss@Desk.test', ADMIN_PASSWORD: 'boss-password-1' });
    const r1 = await bootstrapOperators(t.db, env, () => {});
    expect(r1.created).toBeTruthy();
    const r2 = await bootstrapOperators(
      t.db,
      parseEnv({ NODE_ENV: 'test', DATABASE_URL: t.url, ADMIN_EMAIL: 'boss@desk.test', ADMIN_PASSWORD: 'another-password' }),
      () => {},
    );
    expect(r2).toEqual({});
    await expect(signIn('boss@desk.test', 'boss-password-1')).resolves.toBeTruthy();
  });
});

describe('sign-in and sessions', () => {
  it('signs in with a cookie that is HttpOnly and SameSite, and rotates the session', async () => {
    const op = await makeOperator(t.db, 'compliance');
    const res = await call(
      loginAction,
      post('/login', null, { email: op.email.toUpperCase(), password: PASSWORD, next: '/users?state=VERIFIED' }),
    );
    expect(res.status).toBe(302);
    expect(res.location).toBe('/users?state=VERIFIED');
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/SameSite=Lax/i);
    const first = cookieFrom(res);

    // Signing in again from the same browser ends the previous session (rotation).
    const res2 = await call(loginAction, post('/login', null, { email: op.email, password: PASSWORD }, { headers: { cookie: first } }));
    const second = cookieFrom(res2);
    expect(second).not.toBe(first);
    expect((await call(rootLoader, get('/', { cookie: first, csrf: '', role: null }))).data.operator).toBeNull();
    expect((await call(rootLoader, get('/', { cookie: second, csrf: '', role: null }))).data.operator.email).toBe(op.email);
  });

  it('refuses an open redirect in next', async () => {
    const op = await makeOperator(t.db, 'viewer');
    for (const next of ['//evil.example/x', 'https://evil.example', '/\\evil.example']) {
      const res = await call(loginAction, post('/login', null, { email: op.email, password: PASSWORD, next }));
      expect(res.location).toBe('/');
    }
  });

  it('redirects signed-out requests to /login with next, and a signed-in login page onwards', async () => {
    const res = await call(homeLoader, get('/?x=1'));
    expect(res.status).toBe(302);
    expect(res.location).toBe(`/login?next=${encodeURIComponent('/?x=1')}`);
    const b = await signInAs(t.db, 'viewer');
    const l = await call(loginLoader, get('/login?next=/users', b));
    expect(l.location).toBe('/users');
  });

  it('rejects wrong passwords, audits them and slows down repeated failures', async () => {
    const op = await makeOperator(t.db, 'viewer');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(loginAction, post('/login', null, { email: op.email, password: 'wrong password!' }));
      statuses.push(r.status);
    }
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses[5]).toBe(429);
    // Even the right password waits now.
    const blocked = await call(loginAction, post('/login', null, { email: op.email, password: PASSWORD }));
    expect(blocked.status).toBe(429);
    expect(inEnglish(blocked.data.error)).toMatch(/Wait \d+ seconds/);
    const audits = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'auth.login')
      .where('targetId', '=', op.email)
      .execute();
    expect(audits.filter((a) => a.outcome === 'denied').length).toBeGreaterThanOrEqual(7);
    expect((await findOperatorByEmail(t.db, op.email))!.failedLogins).toBeGreaterThanOrEqual(4);
    // Unknown e-mails get the same answer as wrong passwords.
    const unknown = await call(loginAction, post('/login', null, { email: 'nobody@desk.test', password: 'whatever-123' }));
    expect(unknown.status).toBe(401);
    expect(inEnglish(unknown.data.error)).toBe('That e-mail and password do not match an active operator.');
  });

  it('refuses a cross-site sign-in form (login CSRF)', async () => {
    const op = await makeOperator(t.db, 'viewer');
    const r = await call(loginAction, post('/login', null, { email: op.email, password: PASSWORD }, { origin: 'https://evil.example' }));
    expect(r.status).toBe(403);
  });

  it('expires idle sessions and sessions past their absolute lifetime', async () => {
    const idle = await signInAs(t.db, 'viewer');
    await t.db
      .updateTable('sessions')
      .set({ lastSeenAt: new Date(Date.now() - 31 * 60_000).toISOString() })
      .where('operatorId', '=', idle.operatorId)
      .execute();
    expect((await call(homeLoader, get('/', idle))).status).toBe(302);

    const old = await signInAs(t.db, 'viewer');
    await t.db
      .updateTable('sessions')
      .set({ expiresAt: new Date(Date.now() - 1000).toISOString() })
      .where('operatorId', '=', old.operatorId)
      .execute();
    expect((await call(homeLoader, get('/', old))).status).toBe(302);
  });

  it('sign-out ends the session on the server (a copied cookie stops working)', async () => {
    const b = await signInAs(t.db, 'compliance');
    expect((await call(homeLoader, get('/', b))).status).toBe(200);
    const out = await call(logoutAction, post('/logout', b, {}));
    expect(out.status).toBe(302);
    expect(out.location).toBe('/login?flash=signed-out');
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/i);
    expect((await call(homeLoader, get('/', b))).status).toBe(302);
  });

  it('a disabled operator is signed out and cannot sign in', async () => {
    const b = await signInAs(t.db, 'compliance');
    const code = await runOperatorsCli(['disable', b.email], t.db, { out: () => {}, err: () => {}, prompt: async () => '' });
    expect(code).toBe(0);
    expect((await call(homeLoader, get('/', b))).status).toBe(302);
    const r = await call(loginAction, post('/login', null, { email: b.email, password: PASSWORD }));
    expect(r.status).toBe(401);
  });
});

describe('guards', () => {
  it('requireOperator enforces viewer < compliance < admin with 403', async () => {
    const v = await signInAs(t.db, 'viewer');
    await expect(requireOperator(get('/', v), 'viewer')).resolves.toMatchObject({
      operator: { role: 'viewer' },
      session: { csrfToken: v.csrf },
    });
    const err = await requireOperator(get('/', v), 'compliance').catch((e) => e);
    expect(err).toBeInstanceOf(Response);
    expect(err.status).toBe(403);
    const c = await signInAs(t.db, 'compliance');
    expect((await requireOperator(get('/', c), 'admin').catch((e) => e)).status).toBe(403);
    expect(canSeePii('viewer')).toBe(false);
    expect(canSeePii('compliance')).toBe(true);
    expect(canSeePii('admin')).toBe(true);
  });

  it('requireMutation needs our Origin and the session-bound token (form field or header)', async () => {
    const c = await signInAs(t.db, 'compliance');
    await expect(requireMutation(post('/x', c, {}), 'compliance')).resolves.toMatchObject({ operator: { id: c.operatorId } });
    // Header instead of the field.
    await expect(
      requireMutation(post('/x', c, {}, { csrf: null, headers: { 'x-csrf-token': c.csrf } }), 'compliance'),
    ).resolves.toBeTruthy();
    const refused = async (r: Request) => {
      const e = await requireMutation(r, 'compliance').catch((x) => x);
      expect(e).toBeInstanceOf(Response);
      return e.status as number;
    };
    expect(await refused(post('/x', c, {}, { origin: 'https://evil.example' }))).toBe(403);
    expect(await refused(post('/x', c, {}, { origin: null }))).toBe(403); // neither Origin nor Referer
    expect(await refused(post('/x', c, {}, { csrf: null }))).toBe(403);
    expect(await refused(post('/x', c, {}, { csrf: 'x'.repeat(32) }))).toBe(403);
    // Another session's token does not work.
    const other = await signInAs(t.db, 'compliance');
    expect(await refused(post('/x', c, {}, { csrf: other.csrf }))).toBe(403);
    // Referer from our origin is accepted when Origin is absent.
    await expect(
      requireMutation(post('/x', c, {}, { origin: null, headers: { referer: `${ORIGIN}/users` } }), 'compliance'),
    ).resolves.toBeTruthy();
    const denied = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'csrf.refused')
      .where('operatorId', '=', c.operatorId)
      .execute();
    expect(denied.length).toBeGreaterThanOrEqual(5);
  });
});

describe('operators CLI', () => {
  it('adds, lists, resets passwords and disables; refuses to disable the last admin', async () => {
    const out: string[] = [];
    const errs: string[] = [];
    const io = { out: (m: string) => out.push(m), err: (m: string) => errs.push(m), prompt: async () => 'prompted-password-1' };
    expect(
      await runOperatorsCli(['add', 'cli@desk.test', '--role', 'viewer', '--name', 'Cli User', '--password', 'cli-password-1'], t.db, io),
    ).toBe(0);
    expect(await runOperatorsCli(['add', 'cli@desk.test', '--role', 'viewer', '--password', 'cli-password-1'], t.db, io)).toBe(1);
    expect(await runOperatorsCli(['add', 'bad@desk.test', '--role', 'boss', '--password', 'cli-password-1'], t.db, io)).toBe(1);
    expect(await runOperatorsCli(['list'], t.db, io)).toBe(0);
    expect(out.join('\n')).toMatch(/cli@desk\.test\s+viewer/);
    await signIn('cli@desk.test', 'cli-password-1');
    expect(await runOperatorsCli(['reset-password', 'cli@desk.test'], t.db, io)).toBe(0);
    await expect(signIn('cli@desk.test', 'prompted-password-1')).resolves.toBeTruthy();

    // Only one active admin in a fresh database: disabling it is refused.
    const fresh = await createTestDb();
    try {
      expect(await runOperatorsCli(['add', 'only@desk.test', '--role', 'admin', '--password', 'only-admin-pw'], fresh.db, io)).toBe(0);
      expect(await runOperatorsCli(['disable', 'only@desk.test'], fresh.db, io)).toBe(1);
      expect(errs.join('\n')).toMatch(/last active admin/);
      expect(await countOperators(fresh.db, { activeAdminsOnly: true })).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it('keeps the audit chain intact through all of the above', async () => {
    const r = await verifyAuditChain(t.db);
    expect(r.ok).toBe(true);
    const n = await sql<{ n: number }>`select count(*) as n from audit_log`.execute(t.db);
    expect(Number(n.rows[0]!.n)).toBeGreaterThan(10);
  });
});
