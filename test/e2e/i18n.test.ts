import type { Server } from 'node:http';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { operatorPreferences, setOperatorPreferences } from '../../db/repositories/operators.js';
import { insertUser } from '../../db/repositories/users.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { closeAll, launchChromium, signInThroughPage, startBuiltApp } from '../support/web.js';

/**
 * The console in a real browser for an operator who chose Spanish: the server renders Spanish,
 * the browser hydrates it without a mismatch (React reports one on the console), the client's
 * own words (relative times) are Spanish too, and the header's switch turns the page English.
 */
const PASSWORD = 'correct horse battery';

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;
let anaId = '';

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  ({ server, base } = await startBuiltApp());
  anaId = (await createOperator(rt.db, { email: 'ana@desk.test', name: 'Ana Analista', role: 'compliance', password: PASSWORD })).id;
  await setOperatorPreferences(rt.db, anaId, { locale: 'es', timeZone: 'America/Mexico_City' });
  // A customer waiting since 3 minutes ago, for the dashboard's "waiting longest" list.
  const u = await insertUser(rt.db, { email: 'espera@example.mx', type: 'INDIVIDUAL', alias: 'Cliente en espera', country: 'MX' });
  await rt.db
    .updateTable('users')
    .set({ kycStateChangedAt: new Date(Date.now() - 3 * 60_000 - 10_000).toISOString() })
    .where('id', '=', u.id)
    .execute();
  browser = await launchChromium();
}, 120_000);

afterAll(() => closeAll({ browser, server, rt }));

/** Console errors and warnings (React's hydration mismatch is one), uncaught errors, failed requests. */
function watch(ctx: BrowserContext): { problems: string[] } {
  const problems: string[] = [];
  ctx.on('page', (p) => {
    p.on('console', (m) => {
      // A failed request is reported below with its address.
      if ((m.type() === 'error' || m.type() === 'warning') && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
    });
    p.on('pageerror', (e) => problems.push(String(e)));
    p.on('response', (r) => {
      if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') problems.push(`${r.status()} ${r.url()}`);
    });
  });
  return { problems };
}

const mainNav = (page: Page) => page.getByRole('navigation', { name: /^(Principal|Main)$/ });

describe('an operator who reads Spanish', () => {
  let ctx: BrowserContext;
  let page: Page;
  let seen: { problems: string[] };

  beforeAll(async () => {
    // The browser asks for English: the operator's own setting wins.
    ctx = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' });
    seen = watch(ctx);
    page = await signInThroughPage(ctx, base, 'ana@desk.test', PASSWORD, '/');
  }, 60_000);

  afterAll(async () => {
    await ctx?.close();
  });

  it('signs in on an English sign-in page (the browser asks for English) and lands in Spanish', async () => {
    // Signing in navigates inside the page: the root loader answers in Spanish and the page follows.
    await page.waitForFunction(() => document.documentElement.lang === 'es');
    await mainNav(page).getByRole('link', { name: 'Clientes', exact: true }).waitFor();
    await page.getByRole('heading', { name: 'Los que más esperan' }).waitFor();
  });

  it('sees the header, the nav and the dashboard in Spanish, hydrated without a mismatch', async () => {
    // A fresh document: rendered in Spanish by the server, hydrated in Spanish by the browser.
    await page.goto(`${base}/`);
    expect(await page.getAttribute('html', 'lang')).toBe('es');
    expect(await page.title()).toBe('Inicio — KYC Desk');
    // After hydration the client replaces the moment with a relative time, in Spanish.
    await page.getByText('hace 3 min').waitFor();
    const nav = mainNav(page);
    expect(await nav.getAttribute('aria-label')).toBe('Principal');
    for (const name of ['Inicio', 'Clientes', 'Revisión', 'Importaciones', 'Notificaciones', 'Auditoría'])
      await nav.getByRole('link', { name, exact: true }).waitFor();
    await nav.getByRole('button', { name: 'Cerrar sesión' }).waitFor();
    await page.getByRole('heading', { name: 'Inicio', level: 1 }).waitFor();
    await page.getByRole('heading', { name: 'Clientes por estado' }).waitFor();
    await page.getByRole('heading', { name: 'Los que más esperan' }).waitFor();
    await page.getByRole('heading', { name: 'Creados, aún sin enlace' }).waitFor();
    const text = await page.locator('body').innerText();
    for (const english of ['Users', 'Sign out', 'Customers by state', 'Waiting longest', 'Funnel', 'Loading', 'ago', 'Home'])
      expect(text, `"${english}" on a Spanish page`).not.toContain(english);
    // The state badge says the state in Spanish and keeps Capa's code on hover.
    const badge = page.locator('.badge.NOT_STARTED').first();
    expect(await badge.textContent()).toBe('Sin iniciar');
    expect(await badge.getAttribute('title')).toBe('NOT_STARTED');
    expect(seen.problems).toEqual([]);
  });

  it('switches to English from the header, on the same page, and stays English', async () => {
    await mainNav(page).getByRole('button', { name: 'English' }).click();
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    expect(new URL(page.url()).pathname).toBe('/');
    await mainNav(page).getByRole('link', { name: 'Users', exact: true }).waitFor();
    await page.getByRole('heading', { name: 'Waiting longest' }).waitFor();
    await page.getByText('3 min. ago').waitFor();
    const text = await page.locator('body').innerText();
    for (const spanish of ['Clientes', 'Cerrar sesión', 'Inicio', 'Los que más esperan', 'Embudo', 'hace', 'Sin iniciar'])
      expect(text, `"${spanish}" on an English page`).not.toContain(spanish);
    await mainNav(page).getByRole('button', { name: 'Español' }).waitFor();
    expect(await operatorPreferences(rt.db, anaId)).toEqual({ locale: 'en', timeZone: 'America/Mexico_City' });

    await page.reload();
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.getByText('3 min. ago').waitFor();
    await page.getByRole('heading', { name: 'Home', level: 1 }).waitFor();
    expect(seen.problems).toEqual([]);
  });

  it('chooses Spanish and Santo Domingo time on /account; the page comes back in Spanish with the local time', async () => {
    await page.goto(`${base}/account`);
    await page.selectOption('select[name="locale"]', 'es');
    await page.selectOption('select[name="timeZone"]', 'America/Santo_Domingo');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(/\/account\?flash=preferences-saved/);
    await page.getByText('Se guardaron tu idioma y tu zona horaria.').waitFor();
    expect(await page.getAttribute('html', 'lang')).toBe('es');
    expect(await page.locator('[data-testid="local-time"]').textContent()).toMatch(/^Ahora: .+ \(Santo Domingo\)$/);
    expect(await page.inputValue('select[name="timeZone"]')).toBe('America/Santo_Domingo');
    expect(await operatorPreferences(rt.db, anaId)).toEqual({ locale: 'es', timeZone: 'America/Santo_Domingo' });
    expect(seen.problems).toEqual([]);
  });
});
