import type { Server } from 'node:http';
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
export async function startBuiltApp(opts: Omit<WebOptions, 'build'> = {}): Promise<{ server: Server; base: string }> {
  const root = path.resolve(import.meta.dirname, '../..');
  const build = (await import(`${pathToFileURL(path.join(root, 'build/index.js')).href}?t=${Date.now()}`)) as ServerBuild;
  serveServicesTo(hostOf(build));
  const app = await createWebApp({ build, production: false, ...opts });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
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
