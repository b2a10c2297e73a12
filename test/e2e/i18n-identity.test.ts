import type { Server } from 'node:http';
import { generate } from 'otplib';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { getFixedT, NAMESPACES, resources } from '../../app/i18n.js';
import { acknowledge, insertSilence, openAlert } from '../../db/repositories/alerts.js';
import { setLegalHold } from '../../db/repositories/erasure.js';
import { commitImport, createImport, pauseImport, resumeImport } from '../../db/repositories/imports.js';
import { createSetupToken, setOperatorPreferences } from '../../db/repositories/operators.js';
import { insertUser } from '../../db/repositories/users.js';
import { evaluateAlerts } from '../../jobs/alerts/engine.js';
import { eraseCustomer } from '../../jobs/erasure.js';
import { applyRetention } from '../../jobs/retention.js';
import { retentionPolicy } from '../../domain/retention.js';
import { logger } from '../../lib/logger.js';
import { storedMessage, storeMessage } from '../../lib/stored-message.js';
import { otherLanguageOn, visibleWords } from '../support/language-scan.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { addVirtualAuthenticator, closeAll, freePort, launchChromium, signInThroughPage, startBuiltApp } from '../support/web.js';

/**
 * The pages around identity and data protection in a real browser, each scanned for the other
 * language (its catalogue phrases and its everyday words):
 * - signed out, in the browser's language (es-MX or en-US): first-admin setup (and its link once
 *   spent), sign-in with a refusal and with single sign-on's reason, the customer's return page
 *   after KYC;
 * - signed in, in the operator's own language while the browser asks for the other: setting up a
 *   second factor at sign-in (authenticator app, recovery codes, then a passkey from /account),
 *   the second step of a later sign-in (with a wrong code), /account, the dashboard, imports,
 *   /alerts (a firing alert, a resolved one, a silence, the rules) and the erasure page of an
 *   erased customer (its report), of one under legal hold and of one a retention run erased, and
 *   the retention runs;
 * - for compliance analysts: what only admins may do refused in their language (a page, a form),
 *   and a customer who does not exist.
 * The console runs at http://localhost (a WebAuthn relying party needs a host name).
 */
const PASSWORD = 'correct horse battery';
type Lng = 'es' | 'en';

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;
let setupToken = '';
const ids = { erased: '', held: '', retained: '', resolved: '', erasedTables: [] as string[] };

beforeAll(async () => {
  const port = await freePort();
  base = `http://localhost:${port}`;
  rt = await createTestRuntime({ worker: false, env: { PUBLIC_URL: base, MFA_REQUIRED: 'admin', RETENTION_NOT_STARTED_YEARS: '1' } });
  ({ server } = await startBuiltApp({ port }));
  ({ token: setupToken } = await createSetupToken(rt.db, 3_600_000));
  browser = await launchChromium();
}, 120_000);

afterAll(() => closeAll({ browser, server, rt }));

/** A catalogue's text, as the page for `lng` shows it. */
function word(lng: Lng, key: string): string {
  const [ns, path] = key.split(':') as [string, string];
  let v: unknown = (resources[lng] as unknown as Record<string, unknown>)[ns];
  for (const k of path.split('.')) v = (v as Record<string, unknown>)[k];
  if (typeof v !== 'string') throw new Error(`no text at ${lng}:${key}`);
  return v;
}

/** Console errors and warnings (a hydration mismatch is one) and uncaught errors of every page of `ctx`. */
function watch(ctx: BrowserContext): string[] {
  const problems: string[] = [];
  ctx.on('page', (p) => {
    p.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
    });
    p.on('pageerror', (e) => problems.push(String(e)));
  });
  return problems;
}

/**
 * The page as it is now: in `lng` (`<html lang>`), hydrated, showing `own` (proof the scan read
 * it), and nothing of the other language.
 */
async function expectOnly(page: Page, lng: Lng, own: string): Promise<void> {
  const where = new URL(page.url()).pathname + new URL(page.url()).search;
  // After a navigation inside the page, the page follows the root loader's language on its next render.
  await page.waitForFunction((l) => document.documentElement.lang === l, lng, { timeout: 5_000 }).catch(() => undefined);
  expect(await page.getAttribute('html', 'lang'), where).toBe(lng);
  await page.waitForFunction(() => document.querySelector('main') !== null);
  await page.waitForLoadState('networkidle');
  // The address changes before the new page is drawn, and parts of a page (a passkey offer) appear
  // once its script runs: on a busy machine, give the page time to show its words before reading.
  await page
    .waitForFunction((text) => (document.querySelector('main') as HTMLElement | null)?.innerText.includes(text), own, { timeout: 10_000 })
    .catch(() => undefined);
  expect(await visibleWords(page), `${where} shows its own words`).toContain(own);
  expect(await otherLanguageOn(page, lng, NAMESPACES), `the other language on ${where}`).toEqual({ phrases: [], words: [] });
}

async function passwordStep(page: Page, email: string, next: string): Promise<void> {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname !== '/login');
}

describe.each([
  { locale: 'es-MX', lng: 'es' as const },
  { locale: 'en-US', lng: 'en' as const },
])('signed out, a browser that asks for $locale', ({ locale, lng }) => {
  let ctx: BrowserContext;
  let page: Page;
  let problems: string[];
  beforeAll(async () => {
    ctx = await browser.newContext({ locale });
    problems = watch(ctx);
    page = await ctx.newPage();
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('the first-admin setup page, its errors, and its link once it no longer works', async () => {
    await page.goto(`${base}/setup?token=${setupToken}`);
    await expectOnly(page, lng, word(lng, 'auth:setup.intro'));
    // The browser checks nothing here (no e-mail typed, a short password): the server words the errors.
    await page.evaluate(() => document.querySelectorAll('input').forEach((i) => ((i.required = false), i.removeAttribute('minlength'))));
    await page.fill('input[name="name"]', 'Ana');
    await page.fill('input[name="password"]', 'short');
    await page.click('button[type="submit"]');
    await page.getByText(word(lng, 'auth:setup.errors.password_short')).waitFor();
    await expectOnly(page, lng, word(lng, 'auth:setup.errors.email_invalid'));

    const res = await page.goto(`${base}/setup?token=not-the-token`);
    expect(res?.status()).toBe(404);
    await expectOnly(page, lng, word(lng, 'auth:setup.invalid_link'));
    expect(problems).toEqual([]);
  });

  it('the sign-in page, a refusal, and single sign-on’s reason', async () => {
    await page.goto(`${base}/login`);
    await expectOnly(page, lng, word(lng, 'auth:login.help'));
    await page.fill('input[name="email"]', 'nadie@desk.test');
    await page.fill('input[name="password"]', 'not the password');
    await page.click('button[type="submit"]');
    await page
      .getByRole('alert')
      .filter({ hasText: word(lng, 'auth:login.no_match') })
      .waitFor();
    await expectOnly(page, lng, word(lng, 'auth:login.no_match'));

    await page.goto(`${base}/login?sso=unmapped`);
    await expectOnly(page, lng, word(lng, 'auth:sso.errors.unmapped'));
    expect(problems).toEqual([]);
  });

  it('the customer’s return page after KYC', async () => {
    await page.goto(`${base}/kyc/return`);
    await expectOnly(page, lng, word(lng, 'common:kyc_return.body'));
    expect(await page.title()).toBe(word(lng, 'common:kyc_return.page_title'));
    expect(problems).toEqual([]);
  });
});

describe('signed in', () => {
  beforeAll(async () => {
    const ana = await createOperator(rt.db, { email: 'ana@desk.test', name: 'Ana Test', role: 'admin', password: PASSWORD });
    await setOperatorPreferences(rt.db, ana.id, { locale: 'es', timeZone: 'America/Mexico_City' });
    const ben = await createOperator(rt.db, { email: 'ben@desk.test', name: 'Ben Test', role: 'admin', password: PASSWORD });
    await setOperatorPreferences(rt.db, ben.id, { locale: 'en', timeZone: 'America/Santo_Domingo' });
    // Compliance analysts (no second factor asked of them here), for what only admins may do.
    const cora = await createOperator(rt.db, { email: 'cora@desk.test', name: 'Cora Test', role: 'compliance', password: PASSWORD });
    await setOperatorPreferences(rt.db, cora.id, { locale: 'es', timeZone: 'America/Mexico_City' });
    const carl = await createOperator(rt.db, { email: 'carl@desk.test', name: 'Carl Test', role: 'compliance', password: PASSWORD });
    await setOperatorPreferences(rt.db, carl.id, { locale: 'en', timeZone: 'UTC' });

    // Erasure: one customer erased on request, one under legal hold.
    const erased = await insertUser(rt.db, { email: 'borrar@example.mx', type: 'INDIVIDUAL', alias: 'Lucía', country: 'MX' });
    const erasure = await eraseCustomer(rt.db, erased.id, { kind: 'request', reason: 'ARCO 2026-114', requestedBy: ana.id });
    if (erasure.code !== 'erased') throw new Error(`not erased: ${erasure.code}`);
    ids.erasedTables = Object.keys(erasure.report);
    const held = await insertUser(rt.db, { email: 'retener@example.mx', type: 'INDIVIDUAL', country: 'DO' });
    await setLegalHold(rt.db, held.id, true, 'Expediente 2026-77');
    ids.erased = erased.id;
    ids.held = held.id;
    // Retention: a customer who never started KYC, two years ago, erased by a retention run.
    const stale = await insertUser(rt.db, { email: 'viejo@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    const twoYearsAgo = new Date(Date.now() - 2 * 366 * 86_400_000).toISOString();
    await rt.db.updateTable('users').set({ kycStateChangedAt: twoYearsAgo }).where('id', '=', stale.id).execute();
    const run = await applyRetention({ db: rt.db, logger }, retentionPolicy(rt.env), { jobId: 'retention-e2e' });
    expect(run.erased).toEqual({ NOT_STARTED: 1 });
    ids.retained = stale.id;

    // Alerts: an import paused by a Capa outage fired, was acknowledged and resolved once it ran
    // again; a second one is firing now. A rule is silenced.
    const deps = { db: rt.db, queues: rt.queues, env: rt.env, logger };
    const outage = async (fileName: string) => {
      const id = await createImport(rt.db, { fileName, fileSha256: fileName, fileBytes: 1, delimiter: ',', createdBy: ana.id });
      await commitImport(rt.db, id, ana.id);
      const reason = storeMessage(
        storedMessage('imports:status_reasons.outage', { capaError: 'internal', failures: 5, at: new Date().toISOString() }),
      );
      await pauseImport(rt.db, id, 'outage', reason);
      return id;
    };
    const first = await outage('lote-1.csv');
    await evaluateAlerts(deps, { rules: ['imports.paused'] });
    const fired = (await openAlert(rt.db, 'imports.paused'))!;
    expect(fired.state).toBe('firing');
    await acknowledge(rt.db, fired.id, { operatorId: ana.id, name: ana.email }, 'Ticket 4521');
    await resumeImport(rt.db, first);
    await evaluateAlerts(deps, { rules: ['imports.paused'] });
    await evaluateAlerts(deps, { rules: ['imports.paused'], now: Date.now() + 301_000 });
    expect(await openAlert(rt.db, 'imports.paused')).toBeUndefined();
    ids.resolved = fired.id;
    await outage('lote-2.csv');
    await evaluateAlerts(deps, { rules: ['imports.paused'] });
    expect((await openAlert(rt.db, 'imports.paused'))?.state).toBe('firing');
    await insertSilence(rt.db, {
      ruleId: 'drift.spike',
      reason: 'CAB-2026-19',
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      by: { operatorId: ana.id, name: ana.email },
    });
  }, 120_000);

  describe.each([
    { email: 'ana@desk.test', lng: 'es' as const, browserLocale: 'en-US' },
    { email: 'ben@desk.test', lng: 'en' as const, browserLocale: 'es-MX' },
  ])('$email reads $lng (the browser asks for $browserLocale)', ({ email, lng, browserLocale }) => {
    let ctx: BrowserContext;
    let page: Page;
    let problems: string[];
    let secret = '';
    beforeAll(async () => {
      ctx = await browser.newContext({ locale: browserLocale });
      problems = watch(ctx);
      page = await ctx.newPage();
    });
    afterAll(async () => {
      await ctx?.close();
    });

    it('sets up an authenticator app at sign-in, saves the recovery codes, then adds a passkey from /account', async () => {
      await passwordStep(page, email, '/account');
      expect(new URL(page.url()).pathname).toBe('/auth/mfa/enrol');
      await expectOnly(page, lng, word(lng, 'auth:enrol.required_intro'));
      secret = (await page.getByTestId('totp-secret').textContent())!.replace(/\s/g, '');
      await page.fill('input[name="code"]', await generate({ secret }));
      await page.getByRole('button', { name: word(lng, 'auth:enrol.totp_confirm') }).click();
      await page.getByTestId('recovery-codes').waitFor();
      await expectOnly(page, lng, word(lng, 'auth:enrol.codes_intro'));
      await page.getByRole('link', { name: word(lng, 'auth:enrol.codes_continue') }).click();
      await page.waitForURL(`${base}/account`);
      await expectOnly(page, lng, word(lng, 'account:security.sessions_intro'));

      const authenticator = await addVirtualAuthenticator(page);
      await page.getByRole('link', { name: word(lng, 'account:security.add_passkey') }).click();
      await page.waitForURL((u) => u.pathname === '/auth/mfa/enrol');
      await expectOnly(page, lng, word(lng, 'auth:enrol.totp_already'));
      await page.fill('input[name="name"]', 'Laptop 1');
      await page.getByRole('button', { name: word(lng, 'auth:enrol.passkey_button') }).click();
      await page.waitForURL(`${base}/account`);
      expect(await authenticator.credentials()).toBe(1);
      await expectOnly(page, lng, word(lng, 'account:security.passkey_never_used'));
      expect(problems).toEqual([]);
    });

    it('the second step of the next sign-in, with a wrong code first', async () => {
      await page.locator('nav.top form[action="/logout"] button').click();
      await page.waitForURL((u) => u.pathname === '/login');
      await passwordStep(page, email, '/alerts');
      expect(new URL(page.url()).pathname).toBe('/auth/mfa');
      await expectOnly(page, lng, word(lng, 'auth:mfa.passkey_intro'));
      await page.fill('input[name="code"] >> nth=0', '000000');
      await page.getByRole('button', { name: word(lng, 'auth:mfa.verify') }).click();
      await page
        .getByRole('alert')
        .filter({ hasText: word(lng, 'auth:mfa.totp_wrong') })
        .waitFor();
      await expectOnly(page, lng, word(lng, 'auth:mfa.totp_wrong'));
      // The code of the next 30-second step (the one used to confirm is spent).
      await page.fill('input[name="code"] >> nth=0', await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }));
      await page.getByRole('button', { name: word(lng, 'auth:mfa.verify') }).click();
      await page.waitForURL(`${base}/alerts`);
      expect(problems).toEqual([]);
    });

    it('every page speaks only the operator’s language', async () => {
      // Each page, and words of its own that prove the scan read what the data put there.
      const pages: Array<{ path: string; own: string[] }> = [
        { path: '/', own: [word(lng, 'dashboard:heading')] },
        { path: '/account', own: [word(lng, 'account:security.recovery_heading'), 'Laptop 1'] },
        { path: '/imports', own: ['lote-1.csv', 'lote-2.csv'] },
        { path: '/alerts', own: [word(lng, 'alerts:rules.intro'), word(lng, 'alerts:states.firing'), 'lote-2.csv', 'CAB-2026-19'] },
        {
          path: `/alerts?alert=${ids.resolved}`,
          own: [word(lng, 'alerts:open.selected'), word(lng, 'alerts:states.resolved'), 'Ticket 4521'],
        },
        {
          path: `/users/${ids.erased}/erasure`,
          own: [word(lng, 'evidence:erasure.reports_heading'), word(lng, 'evidence:erasure.kinds.request')],
        },
        { path: `/users/${ids.held}/erasure`, own: [word(lng, 'evidence:erasure.release'), 'Expediente 2026-77'] },
        { path: `/users/${ids.retained}/erasure`, own: [word(lng, 'evidence:erasure.kinds.retention')] },
        {
          path: '/audit/retention',
          own: [word(lng, 'evidence:retention.policy_heading'), word(lng, 'evidence:retention.columns.customers')],
        },
      ];
      const found: Record<string, unknown> = {};
      for (const p of pages) {
        const res = await page.goto(`${base}${p.path}`);
        expect(res?.status(), p.path).toBe(200);
        expect(await page.getAttribute('html', 'lang'), p.path).toBe(lng);
        await page.waitForLoadState('networkidle');
        const text = await visibleWords(page);
        for (const own of p.own) expect(text, `${p.path} shows its own words`).toContain(own);
        const other = await otherLanguageOn(page, lng, NAMESPACES);
        if (other.phrases.length || other.words.length) found[p.path] = other;
      }
      expect(found).toEqual({});

      // The erasure report names what it erased in words, not by table.
      await page.goto(`${base}/users/${ids.erased}/erasure`);
      const report = await page.getByTestId('erasure-report').innerText();
      for (const table of ids.erasedTables) expect(report).toContain(word(lng, `evidence:erasure.tables.${table}`));
      expect(problems).toEqual([]);
    }, 120_000);
  });

  describe.each([
    { email: 'cora@desk.test', lng: 'es' as const, browserLocale: 'en-US' },
    { email: 'carl@desk.test', lng: 'en' as const, browserLocale: 'es-MX' },
  ])('$email, compliance, reads $lng: what only admins may do, and a customer who does not exist', ({ email, lng, browserLocale }) => {
    let ctx: BrowserContext;
    let page: Page;
    let problems: string[];
    beforeAll(async () => {
      ctx = await browser.newContext({ locale: browserLocale });
      problems = watch(ctx);
      page = await signInThroughPage(ctx, base, email, PASSWORD, '/alerts');
    }, 60_000);
    afterAll(async () => {
      await ctx?.close();
    });

    it('refusals and a missing page in the operator’s language', async () => {
      const t = getFixedT(lng);
      await expectOnly(page, lng, word(lng, 'alerts:ack.reason'));

      const denied = await page.goto(`${base}/users/${ids.held}/erasure`);
      expect(denied?.status()).toBe(403);
      await expectOnly(page, lng, t('errors.denied.role', { role: 'compliance', needed: 'admin' }));

      // A hand-made form that changes a rule's thresholds: an admin's work.
      await page.goto(`${base}/alerts`);
      await page.evaluate(() => {
        const f = document.createElement('form');
        f.method = 'post';
        f.action = '/alerts';
        const fields = {
          csrf: document.querySelector<HTMLInputElement>('input[name="csrf"]')!.value,
          intent: 'save-rule',
          ruleId: 'drift.spike',
        };
        for (const [name, value] of Object.entries(fields)) f.append(Object.assign(document.createElement('input'), { name, value }));
        document.body.append(f);
        f.submit();
      });
      await page.waitForLoadState('load');
      await expectOnly(page, lng, word(lng, 'alerts:errors.admin_only'));

      const missing = await page.goto(`${base}/users/00000000-0000-4000-8000-000000000000`);
      expect(missing?.status()).toBe(404);
      await expectOnly(page, lng, word(lng, 'users:page.not_found'));
      // 403 and 404 responses are what the browser reports on its console; nothing else is.
      expect(problems.filter((p) => !/status of 40[34]/.test(p))).toEqual([]);
    });
  });
});
