import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../capa/sandbox/server.js';
import { createOperator } from '../../app/operator-accounts.server.js';
import { notificationsForUser, programmesForUser } from '../../db/repositories/notifications.js';
import { findUserById, insertUser } from '../../db/repositories/users.js';
import { activeLink } from '../../db/repositories/links.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { runNotificationSweep, type NotifyDeps } from '../../jobs/notifications/programme.js';
import { logger } from '../../lib/logger.js';
import { launchChromium, startBuiltApp } from '../support/web.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

/**
 * The retry loop as a customer and an operator live it, in a real browser: the customer is
 * rejected on the sandbox's hosted page → the "try again" e-mail lands in the sandbox mailbox
 * (real SMTP into the sandbox's mail sink) → the customer follows its link and is verified →
 * the follow-ups stop; the operator sees it all on /notifications.
 */
const PASSWORD = 'correct horse battery';
const DAY = 86_400_000;

let rt: TestRuntime;
// The test runtime's Capa sandbox has no mail sink; a second sandbox instance provides the
// sink and its mailbox page (the same code `npm start` runs on SANDBOX_SMTP_PORT).
let mailbox: Sandbox;
let server: Server;
let base: string;
let browser: Browser;
let deps: NotifyDeps;

beforeAll(async () => {
  mailbox = await createSandbox({ smtpPort: 0, partners: [{ apiKey: 'mailbox-only-key', webhookSecret: 'mailbox-only-secret' }] });
  rt = await createTestRuntime({
    env: { SMTP_URL: `smtp://127.0.0.1:${mailbox.smtpPort}`, NOTIFY_BACKOFF_MS: '50', NOTIFY_SEND_ATTEMPTS: '4' },
  });
  ({ server, base } = await startBuiltApp());
  await rt.capa.setWebhookSettings(`${base}/webhooks/capa`);
  await createOperator(rt.db, { email: 'nora@desk.test', name: 'Nora Notifications', role: 'compliance', password: PASSWORD });
  deps = { db: rt.db, enqueue: rt.queues, env: rt.env, logger, dataKeys: rt.services.dataKeys };
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (server ? server.close(r) : r(null)));
  await rt?.close();
  await mailbox?.close();
});

async function signIn(page: Page): Promise<void> {
  await page.goto(`${base}/notifications`);
  await page.waitForURL(/\/login\?next=%2Fnotifications/);
  await page.fill('input[name="email"]', 'nora@desk.test');
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/notifications`);
}

describe('notifications end to end', () => {
  it('reject → "try again" e-mail in the sandbox mailbox → follow its link → verified → follow-ups stop', async () => {
    const email = `e2e.retry.${randomUUID().slice(0, 6)}@example.mx`;
    const user = await insertUser(rt.db, { email, type: 'INDIVIDUAL', country: 'MX', alias: 'Rosa' });
    await rt.queues.add(createCapaUser, { userId: user.id, sendLink: { country: 'MX', requestId: randomUUID(), redirectUri: `${base}/` } });
    const first = await waitFor(
      async () => ((await findUserById(rt.db, user.id))?.kycState === 'LINK_ISSUED' ? activeLink(rt.db, user.id) : null),
      { what: 'first link', timeoutMs: 20_000 },
    );

    const customer = await browser.newContext();
    const cpage = await customer.newPage();
    // 1. The customer is rejected on the provider's page.
    await cpage.goto(first.url);
    await cpage.getByRole('button', { name: 'Reject' }).click();
    await waitFor(
      async () => {
        const u = await findUserById(rt.db, user.id);
        return u?.kycState === 'REJECTED' || (await programmesForUser(rt.db, user.id)).length > 0;
      },
      { what: 'rejection recorded', timeoutMs: 20_000 },
    );

    // 2. The retry e-mail reaches the sandbox mailbox (the sweep requests the new link once Capa confirmed).
    const retry = await waitFor(
      async () => {
        await runNotificationSweep(deps, new Date());
        return (await notificationsForUser(rt.db, user.id)).find((m) => m.kind === 'kyc_retry' && m.status === 'sent');
      },
      { what: 'retry e-mail sent', timeoutMs: 30_000 },
    );
    expect(retry.linkUrl).not.toBe(first.url);

    await cpage.goto(`${mailbox.url}/__sandbox/mailbox`);
    const card = cpage.locator('.card', { hasText: 'Tu verificación no fue aprobada' }).filter({ hasText: email });
    await card.waitFor({ timeout: 10_000 });
    expect(await card.innerText()).toContain('Hola, Rosa:');
    const link = card.locator(`pre a[href="${retry.linkUrl}"]`);
    expect(await link.count()).toBe(1);

    // 3. The customer follows the link from the e-mail and is verified this time.
    // The mailbox opens mail links in a new tab, as a mail client would.
    const [tab] = await Promise.all([customer.waitForEvent('page'), link.click()]);
    await tab.waitForLoadState();
    expect(tab.url()).toBe(retry.linkUrl);
    await tab.getByRole('button', { name: 'Approve (verified)' }).click();
    await waitFor(async () => (await findUserById(rt.db, user.id))?.kycState === 'VERIFIED', { what: 'verified', timeoutMs: 20_000 });

    // 4. The follow-ups stop: the programme ended because the customer acted, and the cadence's
    //    days pass without a reminder.
    const [programme] = await waitFor(
      async () => {
        const ps = await programmesForUser(rt.db, user.id);
        return ps[0]?.status === 'stopped' ? ps : null;
      },
      { what: 'programme stopped' },
    );
    expect(programme!.stopReason).toMatch(/customer (started KYC|verified)/);
    expect(programme!.verifiedAt).toBeTruthy();
    for (const d of [1, 3, 7, 8]) await runNotificationSweep(deps, new Date(Date.parse(programme!.createdAt) + d * DAY + 60_000));
    expect((await notificationsForUser(rt.db, user.id)).filter((m) => m.kind === 'kyc_retry_reminder')).toHaveLength(0);
    expect(mailbox.mail().filter((m) => m.to.includes(email) && /Recordatorio/.test(m.subject))).toHaveLength(0);

    // 5. The operator's view: the ledger row (sent, with its link) and the conversion funnel.
    const ops = await browser.newContext();
    const opage = await ops.newPage();
    await signIn(opage);
    await opage.goto(`${base}/notifications?q=${encodeURIComponent(email)}`);
    const row = opage.locator(`tr[data-message-id="${retry.id}"]`);
    await row.waitFor();
    expect(await row.locator('[data-status]').innerText()).toBe('sent');
    expect(await row.innerText()).toContain(retry.linkUrl!);
    expect(await row.innerText()).toContain('Not approved — try again');
    const funnel = await opage.locator('[data-testid="conversion"] td').allInnerTexts();
    expect(funnel.map((t) => Number(t.split(' ')[0]))).toEqual([1, 1, 1, 1]);

    // The preview shows exactly what was sent.
    await row.getByRole('link', { name: 'preview' }).click();
    await opage.waitForURL(/\/notifications\/preview\?message=/);
    expect(await opage.getByTestId('subject').innerText()).toBe('Tu verificación no fue aprobada — así puedes intentarlo de nuevo');
    expect(await opage.getByTestId('text').innerText()).toContain(retry.linkUrl!);
    await customer.close();
    await ops.close();
  }, 120_000);
});
