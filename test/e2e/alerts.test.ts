import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { openAlert } from '../../db/repositories/alerts.js';
import { commitImport, createImport, pauseImport } from '../../db/repositories/imports.js';
import { evaluateAlerts } from '../../jobs/alerts/engine.js';
import { logger } from '../../lib/logger.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { closeAll, launchChromium, signInThroughPage, startBuiltApp } from '../support/web.js';

/**
 * /alerts in a real browser, in Spanish (the browser asks for es-MX): the header's badge counts
 * the firing alert, the page shows it first with its words from the catalogues, a compliance
 * operator acknowledges it with a reason (the badge clears) and silences another rule.
 */
const PASSWORD = 'correct horse battery';

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;

beforeAll(async () => {
  rt = await createTestRuntime();
  ({ server, base } = await startBuiltApp());
  await createOperator(rt.db, { email: 'ana@desk.test', name: 'Ana Alerts', role: 'compliance', password: PASSWORD });
  const id = await createImport(rt.db, {
    fileName: 'madrugada.csv',
    fileSha256: randomUUID(),
    fileBytes: 1,
    delimiter: ',',
    createdBy: null,
  });
  await commitImport(rt.db, id, null);
  await pauseImport(rt.db, id, 'outage', 'Capa is not answering');
  await evaluateAlerts({ db: rt.db, queues: rt.queues, env: rt.env, logger }, { rules: ['imports.paused'] });
  browser = await launchChromium();
}, 240_000);

afterAll(() => closeAll({ browser, server, rt }));

describe('/alerts in the browser', () => {
  it('badge, alert first, acknowledge with a reason, silence a rule', async () => {
    const ctx = await browser.newContext({ locale: 'es-MX' });
    const page = await signInThroughPage(ctx, base, 'ana@desk.test', PASSWORD, '/alerts');

    const badge = page.getByTestId('alert-badge');
    expect(await badge.getAttribute('data-firing')).toBe('1');
    expect(await badge.textContent()).toBe('Alertas1');
    expect(await page.locator('h1').textContent()).toBe('Alertas');

    const card = page.locator('article[data-rule="imports.paused"]');
    expect(await card.getAttribute('data-state')).toBe('firing');
    expect(await card.locator('strong').first().textContent()).toBe('Importación pausada por una caída de Capa');
    expect(await card.textContent()).toContain('madrugada.csv');

    await card.getByLabel('Qué estás haciendo al respecto').fill('Ticket abierto con soporte de Capa');
    await card.getByRole('button', { name: 'Atender' }).click();
    await page.getByText('imports.paused atendida.').waitFor();
    await waitFor(async () => (await page.getByTestId('alert-badge').getAttribute('data-firing')) === '0', { what: 'badge cleared' });
    expect(await page.locator('article[data-rule="imports.paused"]').getAttribute('data-state')).toBe('acknowledged');
    expect(await openAlert(rt.db, 'imports.paused')).toMatchObject({
      state: 'acknowledged',
      ackReason: 'Ticket abierto con soporte de Capa',
    });

    const row = page.locator('tr[data-rule="drift.spike"]');
    await row.getByText('Silenciar esta regla…').click();
    await row.getByLabel('Durante').selectOption('240');
    await row.getByLabel('Motivo').fill('Mantenimiento anunciado por Capa');
    await row.getByRole('button', { name: 'Silenciar' }).click();
    await page.getByText(/drift\.spike queda silenciada hasta/).waitFor();
    expect(await page.getByTestId('silences').textContent()).toContain('Mantenimiento anunciado por Capa');
    await ctx.close();
  });
});
