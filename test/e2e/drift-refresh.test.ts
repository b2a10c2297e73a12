import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { insertUser } from '../../db/repositories/users.js';
import type { User } from '../../db/schema.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { closeAll, launchChromium, signInThroughPage, startBuiltApp } from '../support/web.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

/**
 * Refresh and drift in a real browser (Debian chromium) against the built app, real workers, real
 * Redis and the Capa sandbox. Customers finished KYC at Capa while every webhook was lost, so only
 * a refresh (Get KYC Details) can tell us; the operator runs one from /refresh and reads /drift.
 */
const PASSWORD = 'correct horse battery';
const STALE_AFTER_MINUTES = 60;

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;
const ops = { compliance: '', viewer: '' };
// verified/review: Capa moved on, we missed it (selected). unselected: the same, not selected.
// unchanged: Capa agrees with us (selected). fresh: Capa confirmed it just now (not stale).
const TAGS = ['verified', 'review', 'unselected', 'unchanged', 'fresh'] as const;
const c = {} as Record<(typeof TAGS)[number], User>;
let runId = 0;

beforeAll(async () => {
  rt = await createTestRuntime({
    worker: false,
    env: { REFRESH_STALE_LINK_ISSUED_MINUTES: String(STALE_AFTER_MINUTES), CAPA_RATE_LIMIT_PER_SEC: '50' },
  });
  // No scheduled scan: only the operator's refresh may ask Capa.
  await rt.startWorkers({ schedules: false });
  ({ server, base } = await startBuiltApp());
  ops.compliance = (
    await createOperator(rt.db, { email: 'carla@drift.test', name: 'Carla Compliance', role: 'compliance', password: PASSWORD })
  ).email;
  ops.viewer = (
    await createOperator(rt.db, { email: 'victor@drift.test', name: 'Victor Viewer', role: 'viewer', password: PASSWORD })
  ).email;

  // Created at Capa (through the sandbox) with a KYC link, the normal way.
  const ids: string[] = [];
  for (const t of TAGS) {
    const u = await insertUser(rt.db, { email: `drift-${t}@example.mx`, type: 'INDIVIDUAL', country: 'MX' });
    await rt.queues.add(createCapaUser, { userId: u.id, sendLink: { country: 'MX', requestId: randomUUID() } });
    ids.push(u.id);
  }
  const linked = () =>
    rt.db
      .selectFrom('users')
      .selectAll()
      .where('id', 'in', ids)
      .where('kycState', '=', 'LINK_ISSUED')
      .where('capaUserId', 'is not', null)
      .execute();
  await waitFor(async () => (await linked()).length === TAGS.length, { timeoutMs: 30_000, what: 'customers linked at Capa' });
  for (const u of await linked()) c[/^drift-(\w+)@/.exec(u.email)![1] as (typeof TAGS)[number]] = u;

  // The customers finish KYC at Capa while every webhook is lost.
  rt.sandbox.setDelivery({ dropRate: 1 });
  rt.sandbox.setOutcome(c.verified.capaUserId!, 'VERIFIED');
  rt.sandbox.setOutcome(c.review.capaUserId!, 'REVIEW_NEEDED');
  rt.sandbox.setOutcome(c.unselected.capaUserId!, 'VERIFIED');
  await rt.sandbox.flushDeliveries();
  rt.sandbox.setDelivery({ dropRate: 0 });
  // Capa last confirmed them three hours ago (past the threshold): stale. "fresh" stays recent.
  const longAgo = new Date(Date.now() - 3 * 3600_000).toISOString();
  await rt.db
    .updateTable('users')
    .set({ capaConfirmedAt: longAgo })
    .where('id', 'in', [c.verified.id, c.review.id, c.unselected.id, c.unchanged.id])
    .execute();
  browser = await launchChromium();
}, 240_000);

afterAll(() => closeAll({ browser, server, rt }));

const signIn = (ctx: BrowserContext, email: string): Promise<Page> => signInThroughPage(ctx, base, email, PASSWORD);

const row = (page: Page, id: string) => page.locator(`tr[data-user-id="${id}"]`);

describe('refresh and drift in the browser', () => {
  let compliance: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    compliance = await browser.newContext();
    page = await signIn(compliance, ops.compliance);
  }, 60_000);
  afterAll(async () => {
    await compliance?.close();
  });

  it('a compliance operator refreshes selected stale customers and watches the run finish', async () => {
    // Precondition: Capa's truth differs from what we show for the customers that moved.
    const truth = new Map(rt.sandbox.users().map((u) => [u.userId, u.kycState]));
    expect([c.verified, c.review, c.unchanged].map((u) => truth.get(u.capaUserId!))).toEqual(['VERIFIED', 'REVIEW_NEEDED', 'LINK_ISSUED']);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Refresh' }).click();
    await page.waitForURL(`${base}/refresh`);
    await page.getByRole('heading', { name: '4 stale customers' }).waitFor();
    for (const t of ['verified', 'review', 'unselected', 'unchanged'] as const) {
      await row(page, c[t].id).locator('.badge.LINK_ISSUED').waitFor();
      expect(await row(page, c[t].id).getByRole('link', { name: c[t].email }).getAttribute('href')).toBe(`/users/${c[t].id}`);
    }
    expect(await row(page, c.fresh.id).count()).toBe(0);
    // "3 hr. ago" is rendered by the client once the page is hydrated: the selection is React state.
    await row(page, c.verified.id).getByText('3 hr. ago').first().waitFor();

    for (const t of ['verified', 'review', 'unchanged'] as const)
      await page.getByRole('checkbox', { name: `Select ${c[t].externalUserId}` }).check();
    await page.getByRole('button', { name: 'Preview refresh of these 3 selected…' }).click();
    const preview = page.getByTestId('refresh-preview');
    await preview.getByRole('heading', { name: 'Preview: refresh 3 selected customers' }).waitFor();
    expect(await preview.getByTestId('preview-calls').textContent()).toBe('3');
    expect(await rt.db.selectFrom('refreshRuns').select('id').execute()).toEqual([]); // a preview writes nothing

    await preview.getByRole('button', { name: 'Start refresh (3 calls)' }).click();
    await page.waitForURL(/\/refresh\/\d+$/);
    runId = Number(/\/refresh\/(\d+)$/.exec(page.url())![1]);
    await page.getByRole('heading', { name: `Refresh run #${runId} — Selected customers` }).waitFor();
    // The page polls by itself; no reload.
    await page
      .getByTestId('run-status')
      .filter({ hasText: /^done$/ })
      .waitFor({ timeout: 30_000 });
    const progress = page.getByTestId('run-progress');
    await progress.getByText('3 of 3 customers answered').waitFor();
    await progress.getByText('2 drift entries (Capa differed from what we showed)').waitFor();
    expect(await progress.textContent()).toContain('started by Carla Compliance');
    const found = page.locator('section[aria-labelledby="drift"] tbody tr');
    expect(await found.count()).toBe(2);
    await found.filter({ hasText: c.verified.externalUserId }).locator('.badge.VERIFIED').waitFor();
    await found.filter({ hasText: c.review.externalUserId }).locator('.badge.REVIEW_NEEDED').waitFor();

    // Back on /refresh: only the customer we did not select is still stale, the run is listed as done.
    await page.getByRole('link', { name: '← Refresh stale customers' }).click();
    await page.getByRole('heading', { name: '1 stale customer', exact: true }).waitFor();
    await row(page, c.unselected.id).waitFor();
    const runRow = page.locator('section[aria-labelledby="runs"] tbody tr').filter({ has: page.getByRole('link', { name: `#${runId}` }) });
    expect((await runRow.locator('td').allTextContents()).map((s) => s.trim())).toEqual([
      `#${runId}`,
      'Selected (operator)',
      'done',
      '3/3',
      '2',
      expect.any(String),
    ]);
  }, 90_000);

  it('the drift page lists what the run found, was → now, and links to the customer', async () => {
    await page.getByRole('link', { name: 'Drift log' }).click();
    await page.waitForURL(`${base}/drift`);
    await page.getByText('2 drift entries', { exact: true }).waitFor();
    const rows = page.locator('tr[data-drift-id]');
    expect(await rows.count()).toBe(2);
    for (const [t, now] of [
      ['verified', 'VERIFIED'],
      ['review', 'REVIEW_NEEDED'],
    ] as const) {
      const r = rows.filter({ hasText: c[t].email });
      const cells = r.locator('td');
      expect(await cells.nth(2).locator('.badge').getAttribute('class')).toBe('badge LINK_ISSUED'); // we showed
      expect(await cells.nth(3).locator('.badge').getAttribute('class')).toBe(`badge ${now}`); // Capa said
      expect(await cells.nth(6).locator('.badge').getAttribute('class')).toBe(`badge ${now}`); // now
      expect(await cells.nth(4).textContent()).toMatch(/CREATED_KYC/); // likely missed
      expect(await r.getByRole('link', { name: `refresh run #${runId}` }).getAttribute('href')).toBe(`/refresh/${runId}`);
    }
    // Capa moved it too, but nobody asked: not drift (yet).
    expect(await rows.filter({ hasText: c.unselected.email }).count()).toBe(0);

    await rows.filter({ hasText: c.verified.email }).getByRole('link', { name: c.verified.email }).click();
    await page.waitForURL(`${base}/users/${c.verified.id}`);
    await page.locator('[data-testid="kyc-state"] .badge.VERIFIED').waitFor();
    await page.locator('ol.timeline li.tl-drift').filter({ hasText: 'Drift: Capa said Verified while we showed Link issued' }).waitFor();
  }, 60_000);

  it('a viewer reads the drift page but cannot open or post the refresh action', async () => {
    const ctx = await browser.newContext();
    try {
      const v = await signIn(ctx, ops.viewer);
      const nav = v.getByRole('navigation', { name: 'Main' });
      expect(await nav.getByRole('link', { name: 'Refresh' }).count()).toBe(0);
      await nav.getByRole('link', { name: 'Drift' }).click();
      await v.waitForURL(`${base}/drift`);
      await v.getByText('2 drift entries', { exact: true }).waitFor();
      const rows = v.locator('tr[data-drift-id]');
      expect(await rows.count()).toBe(2);
      expect(await rows.getByRole('link', { name: /^d•+@example\.mx$/ }).count()).toBe(2); // masked, still linked
      expect(await v.content()).not.toContain(c.verified.email);
      expect(await v.getByRole('link', { name: 'Refresh stale customers' }).count()).toBe(0);

      const denied = await v.goto(`${base}/refresh`);
      expect(denied!.status()).toBe(403);
      await v.getByText('Your role (viewer) cannot do this; it needs compliance.').waitFor();

      // A hand-made POST with the viewer's own valid token is refused by role, and starts nothing.
      await v.goto(`${base}/drift`);
      const csrf = await v.locator('input[name="csrf"]').first().inputValue();
      const runsBefore = await rt.db.selectFrom('refreshRuns').select('id').execute();
      const forms: Array<Record<string, string>> = [
        { intent: 'preview', scope: 'all' },
        { intent: 'start', scope: 'all', requestId: 'viewer-refresh-1' },
        { intent: 'start', scope: 'selected', userId: c.unselected.id, requestId: 'viewer-refresh-2' },
      ];
      for (const form of forms) {
        const r = await v.request.post(`${base}/refresh?index`, { form: { csrf, ...form }, headers: { origin: base }, maxRedirects: 0 });
        expect(r.status()).toBe(403);
      }
      expect(await rt.db.selectFrom('refreshRuns').select('id').execute()).toEqual(runsBefore);
      const audit = await rt.db
        .selectFrom('auditLog')
        .select(['action', 'targetId'])
        .where('outcome', '=', 'denied')
        .where('targetId', '=', 'POST /refresh')
        .execute();
      expect(audit).toHaveLength(3);
      expect(audit.every((a) => a.action === 'access.denied')).toBe(true);
    } finally {
      await ctx.close();
    }
  }, 60_000);
});
