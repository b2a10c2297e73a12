import type { Server } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ServerBuild } from '@remix-run/node';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createWebApp, hostOf, type WebOptions } from '../../server/web.js';
import { serveServicesTo } from './runtime.js';

/** Debian's Chromium, headless, with the flags this machine's closed network needs. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/**
 * The real web app (server/web.ts) over the Remix build the test run made (global setup), on a
 * free port; services come from whatever the test installed with setServices (./runtime.ts),
 * which installs them into this build's own copy of the app too.
 */
export async function startBuiltApp(opts: Omit<WebOptions, 'build'> & { port?: number } = {}): Promise<{ server: Server; base: string }> {
  const root = path.resolve(import.meta.dirname, '../..');
  const build = (await import(`${pathToFileURL(path.join(root, 'build/index.js')).href}?t=${Date.now()}`)) as ServerBuild;
  serveServicesTo(hostOf(build));
  const { port = 0, ...web } = opts;
  const app = await createWebApp({ build, production: false, ...web });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

/** Closes what an e2e file started, whichever of them it got as far as starting. */
export async function closeAll(parts: { browser?: Browser; server?: Server; rt?: { close(): Promise<void> } }): Promise<void> {
  await parts.browser?.close();
  const { server } = parts;
  if (server) await new Promise((r) => server.close(r));
  await parts.rt?.close();
}

/**
 * Opens `path` in a new page of `ctx`, is sent to the sign-in form, signs in and lands back on
 * `path` — the way an operator arrives.
 */
export async function signInThroughPage(
  ctx: BrowserContext,
  base: string,
  email: string,
  password: string,
  path = '/users',
): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${base}${path}`);
  await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === path);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}${path}`);
  return page;
}

/** A TCP port free right now on 127.0.0.1 (for a server whose own URL must be known before it starts). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Chromium's virtual authenticator (DevTools protocol) on this page: a platform passkey that
 * verifies the user and answers every WebAuthn ceremony of the page by itself.
 */
export async function addVirtualAuthenticator(page: Page): Promise<{ credentials(): Promise<number> }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.length,
  };
}

/**
 * Signs in through the identity provider from the sign-in page: the "Sign in with …" button, the
 * provider's own login form (test/support/oidc-provider.ts: any password), and back.
 */
export async function signInWithSso(page: Page, base: string, login: string, path = '/users'): Promise<void> {
  await page.goto(`${base}${path}`);
  await page.waitForURL((u) => u.pathname === '/login');
  await page.getByTestId('sso-button').click();
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.origin === base);
}
