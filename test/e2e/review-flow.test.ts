import type { Server } from 'node:http';
import { type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { applySignal, findUserById, insertUser } from '../../db/repositories/users.js';
import { closeAll, launchChromium, startBuiltApp } from '../support/web.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

/** A real browser against the built app: review-needed customer → claim → note → resolve. */
const PASSWORD = 'correct horse battery';

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  ({ server, base } = await startBuiltApp());
  browser = await launchChromium();
}, 240_000);

afterAll(() => closeAll({ browser, server, rt }));

it('a compliance operator claims a review-needed customer, adds a note and resolves the case', async () => {
  const op = await createOperator(rt.db, { email: 'reviewer@desk.test', name: 'Rita Reviewer', role: 'compliance', password: PASSWORD });
  const u = await insertUser(rt.db, { email: 'needs.review@example.mx', type: 'INDIVIDUAL', country: 'MX' });
  // Through the state machine, as the webhooks would move it.
  for (const signal of [
    { kind: 'LINK_ISSUED' },
    { kind: 'WEBHOOK', event: 'CREATED_KYC' },
    { kind: 'WEBHOOK', event: 'REVIEW_NEEDED_KYC' },
  ] as const) {
    await rt.db.transaction().execute((trx) => applySignal(trx, u.id, signal, { type: 'webhook', id: 'e2e' }));
  }
  expect((await findUserById(rt.db, u.id))?.kycState).toBe('REVIEW_NEEDED');

  const page = await browser.newPage();
  try {
    await page.goto(`${base}/review`);
    await page.waitForURL(/\/login/);
    await page.fill('input[name="email"]', op.email);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/review$/);
    const row = page.locator(`tr[data-user-id="${u.id}"]`);
    await expect(row.textContent()).resolves.toContain('needs.review@example.mx');
    await expect(row.textContent()).resolves.toContain('unassigned');

    await page.getByRole('button', { name: 'Claim next case' }).click();
    await page.waitForURL(new RegExp(`/review/${u.id}`));
    await page.getByText('Case claimed: it is yours.').waitFor();
    await expect(page.getByTestId('assignee').textContent()).resolves.toBe('Rita Reviewer');

    await page.fill('textarea[name="body"]', 'Asked the customer for a clearer selfie.');
    await page.getByRole('button', { name: 'Add note' }).click();
    await page.getByTestId('note').first().waitFor();
    await expect(page.getByTestId('note').first().textContent()).resolves.toContain('Asked the customer for a clearer selfie.');

    await page.selectOption('select[name="status"]', 'resolved');
    await page.selectOption('select[name="reason"]', 'verified_by_capa');
    await page.fill('input[name="comment"]', 'Capa approved after manual review');
    await page.getByRole('button', { name: 'Save status' }).click();
    await page.getByText('Case resolved.').waitFor();
    // The toast can render before the revalidated case data: wait for the status itself.
    await page
      .getByTestId('case-status')
      .filter({ hasText: /^Resolved$/ })
      .waitFor({ timeout: 15_000 });
    await expect(page.getByTestId('case-status').textContent()).resolves.toBe('Resolved');

    // The database agrees, and the queue no longer lists the customer.
    const c = await waitFor(() =>
      rt.db.selectFrom('reviewCases').selectAll().where('userId', '=', u.id).where('status', '=', 'resolved').executeTakeFirst(),
    );
    expect(c.resolutionReason).toBe('verified_by_capa');
    const notes = await rt.db.selectFrom('caseNotes').selectAll().where('userId', '=', u.id).execute();
    expect(notes.map((n) => [n.author, n.body])).toEqual([[op.email, 'Asked the customer for a clearer selfie.']]);
    const actions = await rt.db.selectFrom('auditLog').select('action').where('targetId', '=', u.id).orderBy('id', 'asc').execute();
    expect(actions.map((a) => a.action)).toEqual(['case.claim', 'case.note', 'case.resolve']);
    await page.goto(`${base}/review`);
    await page.getByRole('heading', { name: 'Review queue' }).waitFor();
    expect(await page.locator(`tr[data-user-id="${u.id}"]`).count()).toBe(0);
  } finally {
    await page.close();
  }
});
