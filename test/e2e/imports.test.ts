import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { closeAll, launchChromium, startBuiltApp } from '../support/web.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

/** Bulk import in a real browser: upload → dry run → commit → live progress → errors CSV. */
const PASSWORD = 'correct horse battery';

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  rt = await createTestRuntime();
  ({ server, base } = await startBuiltApp());
  await createOperator(rt.db, { email: 'ines@desk.test', name: 'Ines Imports', role: 'compliance', password: PASSWORD });
  browser = await launchChromium();
  const ctx = await browser.newContext({ acceptDownloads: true });
  page = await ctx.newPage();
  await page.goto(`${base}/imports`);
  await page.waitForURL(/\/login/);
  await page.fill('input[name="email"]', 'ines@desk.test');
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/imports`);
}, 240_000);

afterAll(() => closeAll({ browser, server, rt }));

describe('bulk CSV import in the browser', () => {
  it('a malformed file gets a clear message and creates nothing', async () => {
    await page.goto(`${base}/imports/new`);
    await page.setInputFiles('input[name="file"]', {
      name: 'ragged.csv',
      mimeType: 'text/csv',
      buffer: readFileSync(path.resolve('test/fixtures/imports/ragged.csv')),
    });
    await page.getByRole('button', { name: 'Upload and check' }).click();
    await expect
      .poll(() => page.getByTestId('upload-error').textContent(), { timeout: 15_000 })
      .toContain('Line 3: this row has 2 fields but the header has 3');
    expect(await rt.db.selectFrom('imports').select('id').execute()).toHaveLength(0);
  });

  it('template download, upload, dry run, commit, live progress to completion, errors CSV', async () => {
    await page.goto(`${base}/imports/new`);
    const [tpl] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the template' }).click()]);
    expect(readFileSync((await tpl.path())!, 'utf8')).toContain('externalUserId,email,type,alias,country,sendLink');

    rt.sandbox.setFaults({ latencyMs: 40 });
    const rows = ['externalUserId;email;type;alias;country;sendLink;comment'];
    for (let i = 1; i <= 120; i++) rows.push(`e2e-${i};e2e.${i}@example.mx;INDIVIDUAL;;MX;${i % 4 === 0 ? 'yes' : 'no'};`);
    rows.push('e2e-bad;not-an-email;INDIVIDUAL;;MX;no;', 'e2e-us;us@example.mx;INDIVIDUAL;;US;yes;');
    await page.setInputFiles('input[name="file"]', {
      name: 'customers.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`\uFEFF${rows.join('\r\n')}\r\n`),
    });
    await page.getByRole('button', { name: 'Upload and check' }).click();
    await page.waitForURL(/\/imports\/[0-9a-f-]{36}$/);
    const id = /\/imports\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    expect(await page.getByTestId('summary').textContent()).toMatch(/122 rows: 120 ready to import, 2 with problems/);
    expect(await page.textContent('body')).toContain('Ignored columns (not ours): comment');
    expect(await page.textContent('body')).toContain('"not-an-email" is not a valid e-mail address');
    expect(rt.sandbox.stats().createUserCalls.total).toBe(0); // nothing reached Capa at the dry run

    await page.getByRole('button', { name: 'Start import of 120 rows' }).click();
    await expect.poll(() => page.getByTestId('import-status').textContent(), { timeout: 15_000 }).toMatch(/running|completed/);
    // The progress bar moves without reloading the page.
    const seen = new Set<string>();
    await waitFor(
      async () => {
        seen.add((await page.getByTestId('done').textContent()) ?? '');
        return (await page.getByTestId('import-status').textContent()) === 'completed';
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'completed in the browser' },
    );
    expect(seen.size).toBeGreaterThan(1);
    await expect.poll(() => page.getByTestId('done').textContent(), { timeout: 15_000 }).toBe('120');
    expect(rt.sandbox.stats().usersCreated).toBe(120);
    expect(rt.sandbox.stats().linksGenerated).toBe(30);

    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-errors').click()]);
    const csv = readFileSync((await dl.path())!, 'utf8');
    const lines = csv
      .replace(/^\uFEFF/, '')
      .trim()
      .split(/\r\n/);
    expect(lines[0]).toBe('row,line,externalUserId,email,type,alias,country,sendLink,status,reason,customerId,customerUrl');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain('e2e-bad,not-an-email');
    expect(lines[2]).toMatch(/e2e-us,us@example\.mx,.*unsupported country ""US""/);

    // Each imported row links to its customer.
    await page.goto(`${base}/imports/${id}?rows=done`);
    const href = await page.getByRole('link', { name: 'open' }).first().getAttribute('href');
    expect(href).toMatch(/^\/users\/[0-9a-f-]{36}$/);
    const audit = await rt.db.selectFrom('auditLog').select('action').where('targetId', '=', id).execute();
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(['import.stage', 'import.commit', 'import.completed', 'import.download_errors']),
    );

    // This runtime has no SMTP_URL: the 30 link e-mails fail, and the page says so rather than a bare "completed".
    await page.goto(`${base}/imports/${id}`);
    await expect.poll(() => page.getByTestId('emails-failed').textContent(), { timeout: 20_000 }).toBe('30');
    expect(await page.getByTestId('email-warning').textContent()).toContain('Completed, but 30 link e-mails could not be delivered');
    await page.getByRole('link', { name: 'See why' }).click();
    await page.waitForURL(/rows=email_failed/);
    await expect.poll(() => page.getByTestId('row-email').count(), { timeout: 15_000 }).toBe(30);
    expect(await page.getByTestId('row-email').first().textContent()).toMatch(/^failed e-mail is not configured \(set SMTP_URL\)$/);
    rt.sandbox.setFaults({});
  });
});
