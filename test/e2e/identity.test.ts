import type { Server } from 'node:http';
import { generate } from 'otplib';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { findOperatorByEmail } from '../../db/repositories/operators.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { oidcEnv, startTestIdp, type TestIdp } from '../support/oidc-provider.js';
import { addVirtualAuthenticator, freePort, launchChromium, signInThroughPage, signInWithSso, startBuiltApp } from '../support/web.js';

/**
 * Operator identity in Chromium against the built app and a real OpenID provider: single sign-on
 * as an analyst (mapped to compliance), an unmapped person refused, TOTP set up from the secret
 * the page shows and used to sign in, a recovery code that works once, a passkey registered and
 * used through Chromium's virtual authenticator, and polling marked as background once nobody
 * touches the page. The console runs at http://localhost (a WebAuthn relying party needs a host
 * name, not an IP address).
 */
const PASSWORD = 'correct horse battery';

let rt: TestRuntime;
let idp: TestIdp;
let server: Server;
let base: string;
let browser: Browser;

beforeAll(async () => {
  const port = await freePort();
  base = `http://localhost:${port}`;
  idp = await startTestIdp({ redirectUris: [`${base}/auth/oidc/callback`], postLogoutRedirectUris: [`${base}/login`] });
  rt = await createTestRuntime({
    worker: false,
    env: { PUBLIC_URL: base, MFA_REQUIRED: 'admin,compliance', ...oidcEnv(idp, { OIDC_RECHECK_SECONDS: '300' }) },
  });
  ({ server } = await startBuiltApp({ port }));
  // Known to the console already (the provider's analysts and outsiders alike); roles come from the provider.
  await createOperator(rt.db, { email: 'ana.analyst@corp.test', name: 'Ana', role: 'viewer', password: PASSWORD });
  await createOperator(rt.db, { email: 'oscar.outsider@corp.test', name: 'Oscar', role: 'compliance', password: PASSWORD });
  await createOperator(rt.db, { email: 'adam@desk.test', name: 'Adam Admin', role: 'admin', password: PASSWORD });
  await createOperator(rt.db, { email: 'vera@desk.test', name: 'Vera Viewer', role: 'viewer', password: PASSWORD });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (server ? server.close(r) : r(null)));
  await idp?.close();
  await rt?.close();
});

/** Signs in with the password and lands wherever the sign-in sends (a second-factor page for Adam). */
async function passwordStep(page: Page, email: string): Promise<void> {
  await page.goto(`${base}/login?next=/users`);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname !== '/login');
}

async function signOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/login');
}

describe('single sign-on', () => {
  it('signs an analyst in through the provider with the compliance role', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await signInWithSso(page, base, 'analyst');
    expect(new URL(page.url()).pathname).toBe('/users');
    await expect(page.locator('nav.top .role').textContent()).resolves.toBe('compliance');
    expect((await findOperatorByEmail(rt.db, 'ana.analyst@corp.test'))?.role).toBe('compliance');
    await ctx.close();
  });

  it('refuses a person whose groups map to no role, and says why', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await signInWithSso(page, base, 'outsider');
    const url = new URL(page.url());
    expect(url.pathname).toBe('/login');
    expect(url.searchParams.get('sso')).toBe('unmapped');
    await expect(page.getByRole('alert').textContent()).resolves.toContain('give you no role');
    // Not signed in: the console sends the browser back to the sign-in page.
    await page.goto(`${base}/users`);
    await page.waitForURL((u) => u.pathname === '/login');
    await ctx.close();
  });
});

describe('second factor for password sign-in', () => {
  let ctx: BrowserContext;
  let page: Page;
  let secret = '';
  let recovery: string[] = [];

  beforeAll(async () => {
    ctx = await browser.newContext();
    page = await ctx.newPage();
  });

  afterAll(async () => {
    await ctx?.close();
  });

  it('sets up TOTP from the secret shown on the page and shows ten recovery codes', async () => {
    await passwordStep(page, 'adam@desk.test');
    expect(new URL(page.url()).pathname).toBe('/auth/mfa/enrol');
    await expect(page.getByRole('img', { name: 'QR code for your authenticator app' }).isVisible()).resolves.toBe(true);
    secret = (await page.getByTestId('totp-secret').textContent())!.replace(/\s/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    await page.fill('input[name="code"]', await generate({ secret }));
    await page.getByRole('button', { name: 'Confirm and turn on' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    recovery = await page.getByTestId('recovery-codes').locator('code').allTextContents();
    expect(recovery).toHaveLength(10);
    await page.getByRole('link', { name: /I have saved them/ }).click();
    await page.waitForURL(`${base}/users`);
    await expect(page.locator('nav.top .role').textContent()).resolves.toBe('admin');
  });

  it('signs in with the password and a code computed from that secret', async () => {
    await signOut(page);
    await passwordStep(page, 'adam@desk.test');
    expect(new URL(page.url()).pathname).toBe('/auth/mfa');
    // The code of the next 30-second step (the one used to confirm is spent).
    await page.fill('input[name="code"]', await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(`${base}/users`);
  });

  it('accepts a recovery code once, and refuses it the second time', async () => {
    for (const attempt of ['first', 'second'] as const) {
      await signOut(page);
      await passwordStep(page, 'adam@desk.test');
      await page.getByText('Use a recovery code').click();
      await page.fill('input[name="code"] >> nth=1', recovery[0]!);
      await page.getByRole('button', { name: 'Use this code' }).click();
      if (attempt === 'first') {
        await page.waitForURL(`${base}/users`);
      } else {
        await page.getByRole('alert').waitFor();
        await expect(page.getByRole('alert').textContent()).resolves.toContain('not valid, or was already used');
        expect(new URL(page.url()).pathname).toBe('/auth/mfa');
      }
    }
    // Back in with another code, for the next test.
    await page.fill('input[name="code"] >> nth=1', recovery[1]!);
    await page.getByRole('button', { name: 'Use this code' }).click();
    await page.waitForURL(`${base}/users`);
  });

  it('registers a passkey in the virtual authenticator and signs in with it', async () => {
    const authenticator = await addVirtualAuthenticator(page);
    await page.goto(`${base}/account`);
    await page.getByRole('link', { name: 'Add a passkey' }).click();
    await page.waitForURL((u) => u.pathname === '/auth/mfa/enrol');
    await page.fill('input[name="name"]', 'Test laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForURL(`${base}/account`);
    await expect(page.getByTestId('security-factors').textContent()).resolves.toContain('Test laptop');
    expect(await authenticator.credentials()).toBe(1);

    await signOut(page);
    await passwordStep(page, 'adam@desk.test');
    expect(new URL(page.url()).pathname).toBe('/auth/mfa');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL(`${base}/users`);
    const adam = (await findOperatorByEmail(rt.db, 'adam@desk.test'))!;
    const s = await rt.db
      .selectFrom('sessions')
      .select(['method'])
      .where('operatorId', '=', adam.id)
      .where('revokedAt', 'is', null)
      .where('stage', '=', 'full')
      .execute();
    expect(s.map((x) => x.method)).toEqual(['password+passkey']);
  });
});

describe('an unattended page', () => {
  it('marks its own requests as background after a minute without input, and not once the person is back', async () => {
    const ctx = await browser.newContext();
    await ctx.clock.install();
    const page = await signInThroughPage(ctx, base, 'vera@desk.test', PASSWORD, '/account');
    const headerOf = async () => {
      const req = page.waitForRequest((r) => r.url().endsWith('/healthz'));
      await page.evaluate(() => fetch('/healthz').then((r) => r.status));
      return (await req).headers()['x-kyc-background'];
    };
    await page.mouse.move(5, 5);
    expect(await headerOf()).toBeUndefined();
    await page.clock.fastForward('01:05');
    expect(await headerOf()).toBe('1');
    await page.mouse.move(40, 40);
    expect(await headerOf()).toBeUndefined();
    await ctx.close();
  });
});
