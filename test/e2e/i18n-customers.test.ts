import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { appendAudit } from '../../db/repositories/audit.js';
import { recordJobEnd, recordJobStart } from '../../db/repositories/job-runs.js';
import { setOperatorPreferences } from '../../db/repositories/operators.js';
import { applySignal, insertUser } from '../../db/repositories/users.js';
import { CAPA_CREATE_IN_DOUBT } from '../../jobs/capa-create.js';
import { createFormatters } from '../../lib/i18n.js';
import { phrasesOnlyIn } from '../support/language-scan.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { closeAll, launchChromium, signInThroughPage, startBuiltApp } from '../support/web.js';

/**
 * The customer and import screens in a real browser for an operator who reads Spanish and one who
 * reads English: the list, a validation error on the new-customer form (in the browser and from
 * the server), the customer's timeline with times in the operator's time zone, a CSV dry run with
 * its row reasons and the errors file. Each page is scanned for the other language's phrases
 * (from the users and imports catalogues), so a sentence left in one language shows up here.
 */
const PASSWORD = 'correct horse battery';
/** A job of the customer's that finished at a known moment: 12:05:30 in Mexico City, 14:05:30 in Santo Domingo. */
const FINISHED = '2026-03-10T18:05:30.000Z';

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;
let customerId = '';

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  ({ server, base } = await startBuiltApp());
  const ana = await createOperator(rt.db, { email: 'ana@desk.test', name: 'Ana Analista', role: 'compliance', password: PASSWORD });
  await setOperatorPreferences(rt.db, ana.id, { locale: 'es', timeZone: 'America/Mexico_City' });
  const ben = await createOperator(rt.db, { email: 'ben@desk.test', name: 'Ben Reviewer', role: 'compliance', password: PASSWORD });
  await setOperatorPreferences(rt.db, ben.id, { locale: 'en', timeZone: 'America/Santo_Domingo' });

  // One customer with a history: created by Ana, a link issued by her, a Capa create that failed.
  const u = await insertUser(rt.db, {
    email: 'lucia@example.mx',
    type: 'INDIVIDUAL',
    alias: 'Lucía Pérez',
    country: 'MX',
    createdBy: ana.id,
  });
  customerId = u.id;
  await appendAudit(rt.db, {
    operatorId: ana.id,
    actor: 'ana@desk.test',
    action: 'user.create',
    targetType: 'user',
    targetId: u.id,
    outcome: 'ok',
    detail: { type: 'INDIVIDUAL', country: 'MX', sendLink: true, emailLink: true, locale: 'es' },
  });
  await rt.db
    .transaction()
    .execute((trx) => applySignal(trx, u.id, { kind: 'LINK_ISSUED' }, { type: 'operator', id: ana.id, reason: 'link generated' }));
  const run = await recordJobStart(rt.db, { userId: u.id, jobName: 'create-capa-user', jobId: 'create-e2e-1', attempt: 1 });
  await recordJobEnd(rt.db, run, 'failed', { error: CAPA_CREATE_IN_DOUBT });
  await rt.db.updateTable('jobRuns').set({ startedAt: '2026-03-10T18:05:29.000Z', finishedAt: FINISHED }).where('id', '=', run).execute();
  // Capa refused the customer: stored in describeCapaError's English, as the create job writes it.
  await rt.db
    .updateTable('users')
    .set({ capaSync: 'failed', capaSyncError: 'This email or external id already exists in Capa.' })
    .where('id', '=', u.id)
    .execute();
  browser = await launchChromium();
}, 120_000);

afterAll(() => closeAll({ browser, server, rt }));

const NAMESPACES = ['users', 'imports'] as const;

/** None of the other language's phrases on the page — and some of its own (the scan sees the page). */
async function expectLanguage(page: Page, lng: 'es' | 'en', where: string) {
  const body = await page.locator('body').innerText();
  const found = phrasesOnlyIn(lng === 'es' ? 'en' : 'es', NAMESPACES).filter((p) => body.includes(p));
  expect(found, `other-language phrases on ${where}`).toEqual([]);
  expect(phrasesOnlyIn(lng, NAMESPACES).filter((p) => body.includes(p)).length, `own phrases on ${where}`).toBeGreaterThan(0);
}

const BAD_CSV = [
  'externalUserId;email;type;alias;country;sendLink',
  'e2e-1;bien@example.mx;INDIVIDUAL;;MX;no',
  'e2e-2;not-an-email;INDIVIDUAL;;MX;no',
  'e2e-3;us@example.mx;INDIVIDUAL;;US;yes',
  'e2e-4;lucia@example.mx;INDIVIDUAL;;MX;no',
].join('\r\n');

interface Reader {
  email: string;
  lng: 'es' | 'en';
  timeZone: string;
  words: {
    list: { heading: string; count: string; column: string; type: string };
    form: { heading: string; submit: string; invalid: string; taken: string };
    timeline: { heading: string; job: string; inDoubt: string; state: string; reason: string; by: string; audit: string; country: string };
    capa: { list: string; refused: string };
    imports: { upload: string; summary: RegExp; reasons: string[]; download: string; header: string; reasonCell: string };
  };
}

const READERS: Reader[] = [
  {
    email: 'ana@desk.test',
    lng: 'es',
    timeZone: 'America/Mexico_City',
    words: {
      list: { heading: 'Clientes', count: '1 cliente', column: 'Estado KYC', type: 'Persona física' },
      form: {
        heading: 'Nuevo cliente',
        submit: 'Crear cliente',
        invalid: 'Escribe un correo válido: el dominio no tiene punto (como ejemplo.com).',
        taken: 'Ya existe un cliente con este correo (Capa exige correos únicos).',
      },
      timeline: {
        heading: 'Historial',
        job: 'Crear en Capa — falló',
        inDoubt: 'Capa ya tiene este externalUserId y un intento anterior no guardó su id de Capa',
        state: 'Estado Sin iniciar → Enlace enviado',
        reason: 'enlace generado',
        by: 'por: Ana Analista',
        audit: 'ana@desk.test: creó al cliente — correcto',
        country: 'país: MX',
      },
      capa: { list: 'no está en Capa', refused: 'Capa rechazó a este cliente: Este correo o id externo ya existe en Capa.' },
      imports: {
        upload: 'Subir y revisar',
        summary: /^4 filas: 1 lista para importar, 3 con problemas\.$/,
        reasons: [
          '"not-an-email" no es un correo válido: no tiene @',
          'país no admitido "US" (solo hay enlaces KYC para MX y DO)',
          'ya existe aquí (cliente ',
        ],
        download: 'Descargar las filas con problemas (CSV)',
        header: 'fila,línea,id_externo,correo,tipo,alias,país,enviar_enlace,estado,motivo,id_cliente,url_cliente',
        reasonCell: '"""not-an-email"" no es un correo válido: no tiene @"',
      },
    },
  },
  {
    email: 'ben@desk.test',
    lng: 'en',
    timeZone: 'America/Santo_Domingo',
    words: {
      list: { heading: 'Users', count: '1 customer', column: 'KYC state', type: 'Individual' },
      form: {
        heading: 'New customer',
        submit: 'Create customer',
        invalid: 'Enter a valid e-mail address: the domain has no dot (like example.com).',
        taken: 'A customer with this e-mail already exists (Capa needs unique e-mails).',
      },
      timeline: {
        heading: 'Timeline',
        job: 'Create in Capa — failed',
        inDoubt: 'Capa already has this externalUserId and an earlier attempt did not record its Capa id',
        state: 'State Not started → Link issued',
        reason: 'link generated',
        by: 'by: Ana Analista',
        audit: 'ana@desk.test: created the customer — ok',
        country: 'country: MX',
      },
      capa: { list: 'not in Capa', refused: 'Capa refused this customer: This email or external id already exists in Capa.' },
      imports: {
        upload: 'Upload and check',
        summary: /^4 rows: 1 ready to import, 3 with problems\.$/,
        reasons: [
          '"not-an-email" is not a valid e-mail address: it has no @',
          'unsupported country "US" (KYC links exist for MX and DO only)',
          'already exists here (customer ',
        ],
        download: 'Download the rows with problems (CSV)',
        header: 'row,line,externalUserId,email,type,alias,country,sendLink,status,reason,customerId,customerUrl',
        reasonCell: '"""not-an-email"" is not a valid e-mail address: it has no @"',
      },
    },
  },
];

for (const reader of READERS) {
  const w = reader.words;
  describe(`customers and imports for an operator who reads ${reader.lng === 'es' ? 'Spanish' : 'English'}`, () => {
    let ctx: BrowserContext;
    let page: Page;
    const problems: string[] = [];

    beforeAll(async () => {
      // The browser asks for the other language: the operator's own setting wins.
      ctx = await browser.newContext({ locale: reader.lng === 'es' ? 'en-US' : 'es-MX', timezoneId: 'UTC', acceptDownloads: true });
      ctx.on('page', (p) => {
        p.on('console', (m) => {
          if ((m.type() === 'error' || m.type() === 'warning') && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
        });
        p.on('pageerror', (e) => problems.push(String(e)));
      });
      page = await signInThroughPage(ctx, base, reader.email, PASSWORD, '/users');
    }, 60_000);

    afterAll(async () => {
      await ctx?.close();
    });

    it('the customer list', async () => {
      await page.goto(`${base}/users`);
      expect(await page.getAttribute('html', 'lang')).toBe(reader.lng);
      await page.getByRole('heading', { name: w.list.heading, level: 1 }).waitFor();
      await page.getByRole('columnheader', { name: w.list.column }).waitFor();
      await page.getByText(w.list.count, { exact: true }).waitFor();
      const row = page.locator(`tr[data-user-id="${customerId}"]`);
      await row.getByText(w.list.type).waitFor();
      await row.getByText(w.capa.list).waitFor();
      await expectLanguage(page, reader.lng, '/users');
      expect(problems).toEqual([]);
    });

    it('a validation error on the new-customer form, from the browser and from the server', async () => {
      await page.goto(`${base}/users/new`);
      await page.getByRole('heading', { name: w.form.heading }).waitFor();
      await page.fill('input[name="email"]', 'ana@localhost');
      await page.getByRole('button', { name: w.form.submit }).click();
      expect(await page.locator('#email-error').textContent()).toBe(w.form.invalid);
      // A customer who exists: only the server knows, and says so in the operator's language.
      await page.fill('input[name="email"]', 'LUCIA@example.mx');
      await page.getByRole('button', { name: w.form.submit }).click();
      await page.locator('#email-error').filter({ hasText: w.form.taken }).waitFor();
      await expectLanguage(page, reader.lng, '/users/new');
      expect(problems).toEqual([]);
    });

    it('the customer page: the timeline in the operator’s words, times in the operator’s time zone', async () => {
      await page.goto(`${base}/users/${customerId}`);
      await page.getByRole('heading', { name: w.timeline.heading }).waitFor();
      // Capa's refusal in plain words, in the operator's language.
      expect(await page.getByRole('alert').filter({ hasText: w.capa.refused }).textContent()).toBe(w.capa.refused);
      const timeline = page.locator('ol.timeline');
      const job = timeline.locator('li.tl-job');
      await job.getByText(w.timeline.job, { exact: true }).waitFor();
      expect(await job.innerText()).toContain(w.timeline.inDoubt);
      const finished = createFormatters(reader.lng === 'es' ? 'es-MX' : 'en-US', reader.timeZone).dateTime(FINISHED, { seconds: true });
      expect(finished).toContain(reader.timeZone === 'America/Mexico_City' ? '12:05:30' : '14:05:30');
      expect(await job.locator('.tl-facts').innerText()).toContain(finished);
      // The exact moment on hover, named with its time zone.
      expect(await job.locator('time').getAttribute('title')).toContain(reader.timeZone);
      const state = timeline.locator('li.tl-state');
      await state.getByText(w.timeline.state, { exact: true }).waitFor();
      expect(await state.innerText()).toContain(w.timeline.reason);
      expect(await state.innerText()).toContain(w.timeline.by);
      const audit = timeline.locator('li.tl-operator');
      await audit.getByText(w.timeline.audit, { exact: true }).waitFor();
      expect(await audit.innerText()).toContain(w.timeline.country);
      await expectLanguage(page, reader.lng, '/users/:id');
      expect(problems).toEqual([]);
    });

    it('a CSV dry run with the row reasons, and the errors file, in the operator’s language', async () => {
      await page.goto(`${base}/imports/new`);
      await page.setInputFiles('input[name="file"]', { name: 'clientes.csv', mimeType: 'text/csv', buffer: Buffer.from(`${BAD_CSV}\r\n`) });
      await page.getByRole('button', { name: w.imports.upload }).click();
      await page.waitForURL(/\/imports\/[0-9a-f-]{36}$/);
      expect(await page.getByTestId('summary').innerText()).toMatch(w.imports.summary);
      const body = await page.locator('body').innerText();
      for (const reason of w.imports.reasons) expect(body).toContain(reason);
      await expectLanguage(page, reader.lng, '/imports/:id');

      const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: w.imports.download }).click()]);
      const lines = readFileSync((await file.path())!, 'utf8')
        .replace(/^\uFEFF/, '')
        .trimEnd()
        .split('\r\n');
      expect(lines[0]).toBe(w.imports.header);
      expect(lines).toHaveLength(4);
      expect(lines[1]).toContain(w.imports.reasonCell);
      expect(problems).toEqual([]);
    });
  });
}
