import type { Server } from 'node:http';
import { UnrecoverableError, Worker } from 'bullmq';
import { type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { appendAudit } from '../../db/repositories/audit.js';
import { claimNext, insertNote, insertTask } from '../../db/repositories/cases.js';
import { backfillDrift } from '../../db/repositories/drift.js';
import { insertDelivery, settleDelivery } from '../../db/repositories/inbox.js';
import { cancelMessage, insertMessage, insertProgramme, markFailed, markSent } from '../../db/repositories/notifications.js';
import { setOperatorPreferences } from '../../db/repositories/operators.js';
import { createRun, updateRun } from '../../db/repositories/refresh.js';
import { putSetting, SETTING_KEYS } from '../../db/repositories/settings.js';
import { applySignal, insertUser } from '../../db/repositories/users.js';
import { redisConnection } from '../../lib/redis.js';
import { otherLanguageOn, phrasesOnlyIn, visibleWords } from '../support/language-scan.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { closeAll, launchChromium, signInThroughPage, startBuiltApp } from '../support/web.js';

/**
 * Every review, notifications, drift/refresh, operations, operators and audit page in a real
 * browser, for an admin who reads Spanish and one who reads English, over data that fills each
 * page (a claimed case with a note and a task, sent/failed/cancelled messages, drift with its
 * evidence, a finished refresh run, webhook deliveries — one with a processing error, a failed job
 * with a Capa refusal, a FAILED delivery at Capa, a registered webhook URL, audit entries). Each
 * page is scanned for the other language: its catalogue phrases and its everyday words.
 */
const PASSWORD = 'correct horse battery';
const NAMESPACES = [
  'common',
  'review',
  'notifications',
  'drift',
  'refresh',
  'inbox',
  'queues',
  'capa-log',
  'capa',
  'settings',
  'operators',
  'audit',
];

let rt: TestRuntime;
let server: Server;
let base: string;
let browser: Browser;
const ids = { review: '', message: '', run: 0, delivery: 0, erroredDelivery: 0, capaDelivery: '' };

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  ({ server, base } = await startBuiltApp());
  const ana = await createOperator(rt.db, { email: 'ana@desk.test', name: 'Ana Test', role: 'admin', password: PASSWORD });
  await setOperatorPreferences(rt.db, ana.id, { locale: 'es', timeZone: 'America/Mexico_City' });
  const ben = await createOperator(rt.db, { email: 'ben@desk.test', name: 'Ben Test', role: 'admin', password: PASSWORD });
  await setOperatorPreferences(rt.db, ben.id, { locale: 'en', timeZone: 'America/Santo_Domingo' });
  const move = (userId: string, signal: Parameters<typeof applySignal>[2], cause: Parameters<typeof applySignal>[3]) =>
    rt.db.transaction().execute((trx) => applySignal(trx, userId, signal, cause));

  // Review: a customer in review, claimed by Ana, with a note and a follow-up task.
  const r = await insertUser(rt.db, { email: 'rev1@example.mx', type: 'INDIVIDUAL', country: 'MX' });
  await move(r.id, { kind: 'LINK_ISSUED' }, { type: 'operator', id: ana.id });
  await move(r.id, { kind: 'WEBHOOK', event: 'CREATED_KYC' }, { type: 'webhook', id: '1' });
  await move(r.id, { kind: 'WEBHOOK', event: 'REVIEW_NEEDED_KYC' }, { type: 'webhook', id: '2' });
  const actor = { id: ana.id, label: ana.email };
  expect((await claimNext(rt.db, actor))?.userId).toBe(r.id);
  await insertNote(rt.db, r.id, actor, 'Selfie 2');
  await insertTask(rt.db, r.id, actor, { title: 'Selfie 3', dueOn: '2026-12-01' });
  ids.review = r.id;

  // Notifications: sent, failed (a mail server's refusal after retries), cancelled (follow-ups stopped).
  const n = await insertUser(rt.db, { email: 'msg1@example.mx', type: 'INDIVIDUAL', country: 'MX' });
  const msg = async (key: string, kind: 'kyc_link' | 'kyc_retry') =>
    (
      await insertMessage(rt.db, {
        userId: n.id,
        kind,
        channel: 'email',
        locale: 'es',
        address: n.email,
        dedupeKey: key,
        linkUrl: 'https://kyc.example/s/e2e',
      })
    ).row;
  const sent = await msg('e2e-sent', 'kyc_link');
  await markSent(rt.db, sent.id, { subject: 'Tu enlace de verificación', providerMessageId: 'p-1' });
  ids.message = sent.id;
  await markFailed(
    rt.db,
    (await msg('e2e-failed', 'kyc_retry')).id,
    'gave up after 3 attempt(s): SMTP 550 at RCPT TO: 5.1.1 <msg1@example.mx>',
  );
  await cancelMessage(rt.db, (await msg('e2e-cancelled', 'kyc_retry')).id, 'programme stopped: customer verified');
  await insertProgramme(rt.db, {
    userId: n.id,
    rejectedAt: new Date().toISOString(),
    cadenceDays: [1, 3],
    firstDueAt: new Date(Date.now() + 86_400_000).toISOString(),
  });

  // Drift: Capa said VERIFIED while we showed LINK_ISSUED, found by a finished refresh run.
  const { run } = await createRun(rt.db, { kind: 'selected', requestedBy: ana.id, ratePerSec: 50, etaSeconds: 2 });
  const d = await insertUser(rt.db, { email: 'drift1@example.mx', type: 'INDIVIDUAL', country: 'DO' });
  await move(d.id, { kind: 'LINK_ISSUED' }, { type: 'operator', id: ana.id });
  await move(d.id, { kind: 'POLLED', state: 'VERIFIED' }, { type: 'poll', id: 'fd-e2e', reason: `refresh:${run.id}` });
  expect(await backfillDrift(rt.db, { userId: d.id })).toBe(1);
  await updateRun(rt.db, run.id, { status: 'done', answered: 1, drift: 1, finishedAt: new Date().toISOString() });
  await rt.db.updateTable('refreshRuns').set({ total: 1 }).where('id', '=', run.id).execute();
  ids.run = run.id;

  // Webhook inbox: one that moved a customer, one for a customer we do not have (its error recorded).
  const delivery = (externalUserId: string, event: string) => ({
    receivedAt: new Date().toISOString(),
    rawBody: JSON.stringify({ type: 'KYC', event, externalUserId }),
    headers: JSON.stringify({ 'content-type': 'application/json', 'x-forwarded-for': '10.0.0.9' }),
    signatureVerdict: 'valid' as const,
    secretIndex: 0,
    eventType: 'KYC',
    eventName: event,
    externalUserId,
    dedupeKey: `${externalUserId}:${event}`,
    duplicateOf: null,
    status: 'received' as const,
    enqueuedAt: null,
    processedAt: null,
    userId: null,
    stateFrom: null,
    stateTo: null,
    effect: null,
    error: null,
  });
  ids.delivery = await insertDelivery(rt.db, delivery(r.externalUserId, 'CREATED_KYC'));
  await settleDelivery(rt.db, ids.delivery, {
    status: 'processed',
    userId: r.id,
    stateFrom: 'LINK_ISSUED',
    stateTo: 'IN_PROGRESS',
    effect: 'apply',
    attempts: 1,
  });
  ids.erroredDelivery = await insertDelivery(rt.db, delivery('x-404', 'VERIFIED_USER'));
  await settleDelivery(rt.db, ids.erroredDelivery, {
    status: 'ignored',
    effect: 'unknown_user',
    error: 'no customer with externalUserId x-404',
    attempts: 1,
  });

  // Queues: a job Capa refused for good.
  const capa = rt.queues.queue('capa');
  await capa.add('fetch-details', { userId: d.id }, { jobId: 'fd-e2e-1', attempts: 1 });
  const connection = redisConnection(rt.env.REDIS_URL, 'worker');
  const refuser = new Worker(
    'capa',
    async () => {
      throw new UnrecoverableError('Capa getKycDetails failed (HTTP 404 NOT_FOUND_ERROR): User was not found');
    },
    { connection, prefix: rt.env.QUEUE_PREFIX },
  );
  await waitFor(async () => ((await capa.getFailedCount()) === 1 ? true : null), { what: 'a failed job' });
  await refuser.close();
  connection.disconnect();

  // Capa's delivery log: a delivery Capa gave up on.
  rt.sandbox.setDelivery({ dropRate: 1 });
  [ids.capaDelivery] = rt.sandbox.emitEvent({ type: 'KYC', event: 'VERIFIED_USER', externalUserId: d.externalUserId });
  rt.sandbox.setDelivery({ dropRate: 0 });

  // Webhook settings: the URL registered at Capa; the audit log: an entry of each of these pages.
  await putSetting(
    rt.db,
    SETTING_KEYS.capaWebhook,
    { url: rt.intakeUrl, capaId: 'w-1', capaUpdatedAt: null, setAt: new Date().toISOString(), setBy: ana.email },
    ana.id,
  );
  for (const action of ['case.claim', 'notification.programme.stop', 'refresh.selected', 'queues.retry', 'capa.delivery.retry']) {
    await appendAudit(rt.db, {
      operatorId: ana.id,
      actor: ana.email,
      action,
      targetType: 'user',
      targetId: r.id,
      outcome: 'ok',
      detail: null,
    });
  }
  browser = await launchChromium();
}, 180_000);

afterAll(() => closeAll({ browser, server, rt }));

/** Each page, and a phrase of its own that proves the scan read it (in Spanish, in English). */
const pages = (): Array<{ path: string; es: string; en: string }> => [
  { path: '/review', es: 'Cola de revisión', en: 'Review queue' },
  { path: `/review/${ids.review}`, es: 'Tareas de seguimiento', en: 'Follow-up tasks' },
  { path: '/notifications', es: 'el servidor de correo lo rechazó (SMTP 550)', en: 'the mail server refused it (SMTP 550)' },
  { path: '/notifications/preview', es: 'Vista previa del mensaje', en: 'Message preview' },
  { path: `/notifications/preview?message=${ids.message}`, es: 'Texto simple', en: 'Plain text' },
  { path: '/drift', es: 'nunca llegó', en: 'never received' },
  { path: '/refresh', es: 'Actualizaciones recientes', en: 'Recent refresh runs' },
  { path: `/refresh/${ids.run}`, es: 'Discrepancias encontradas en esta actualización', en: 'Drift found by this run' },
  {
    path: '/webhooks',
    es: 'No hay ningún cliente con externalUserId x-404 en KYC Desk.',
    en: 'No customer with externalUserId x-404 in KYC Desk.',
  },
  { path: `/webhooks/${ids.delivery}`, es: 'Volver a procesar', en: 'Re-process' },
  { path: `/webhooks/${ids.erroredDelivery}`, es: 'cliente desconocido', en: 'unknown customer' },
  { path: '/queues', es: 'Capa no conoce a este usuario.', en: 'Capa does not know this user.' },
  { path: '/capa/deliveries', es: 'Registro de envíos de Capa', en: 'Capa delivery log' },
  {
    path: `/capa/deliveries/${ids.capaDelivery}`,
    es: 'Capa se rindió tras sus reintentos automáticos',
    en: 'Capa gave up after its automatic retries',
  },
  { path: '/admin/settings', es: 'Secretos de firma aceptados', en: 'Accepted signing secrets' },
  { path: '/admin/operators', es: 'Agregar un operador', en: 'Add an operator' },
  { path: '/audit', es: 'Seguimientos detenidos', en: 'Follow-ups stopped' },
];

describe.each([
  { email: 'ana@desk.test', lng: 'es' as const },
  { email: 'ben@desk.test', lng: 'en' as const },
])('operations screens for $email ($lng)', ({ email, lng }) => {
  let ctx: BrowserContext;
  beforeAll(async () => {
    ctx = await browser.newContext();
    (await signInThroughPage(ctx, base, email, PASSWORD, '/review')).close();
  }, 60_000);
  afterAll(async () => {
    await ctx?.close();
  });

  it('every page speaks only the operator’s language', async () => {
    expect(phrasesOnlyIn(lng === 'es' ? 'en' : 'es', NAMESPACES).length).toBeGreaterThan(100);
    const page = await ctx.newPage();
    try {
      const problems: Record<string, unknown> = {};
      for (const p of pages()) {
        const res = await page.goto(`${base}${p.path}`);
        expect(res?.status(), p.path).toBe(200);
        expect(await page.getAttribute('html', 'lang'), p.path).toBe(lng);
        // Hydrated: relative times are drawn by the browser, in its language too.
        await page.waitForFunction(() => document.querySelector('main') !== null);
        await page.waitForLoadState('networkidle');
        const text = await visibleWords(page);
        expect(text, `${p.path} shows its own words`).toContain(p[lng]);
        const found = await otherLanguageOn(page, lng, NAMESPACES);
        if (found.phrases.length || found.words.length) problems[p.path] = found;
      }
      expect(problems).toEqual({});
    } finally {
      await page.close();
    }
  }, 120_000);
});
