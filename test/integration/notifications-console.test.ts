import { randomUUID } from 'node:crypto';
import { getFixedT } from '../../app/i18n.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notificationsListData, previewData, resendMessage, stopProgrammeAction } from '../../app/notifications.server.js';
import type { SignedIn } from '../../app/auth.server.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { generateLink } from '../../jobs/definitions/generate-link.js';
import {
  conversion,
  insertMessage,
  insertProgramme,
  listMessages,
  markReinvited,
  notificationsForUser,
  programmesForUser,
  recordProgrammeOutcome,
  rejectionsWithoutProgramme,
} from '../../db/repositories/notifications.js';
import { activeLink } from '../../db/repositories/links.js';
import { findUserById, insertUser } from '../../db/repositories/users.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';
import { createTestDb, createTestRuntime, postgresAvailable, waitFor, type TestRuntime } from '../support/runtime.js';

const compliance: SignedIn = {
  operator: { id: 'op-compliance', email: 'c@desk.example', name: 'Carla', role: 'compliance' },
  session: { csrfToken: 'x' },
};
const viewer: SignedIn = {
  operator: { id: 'op-viewer', email: 'v@desk.example', name: 'Vic', role: 'viewer' },
  session: { csrfToken: 'x' },
};
const req = () => new Request('http://127.0.0.1/notifications', { method: 'POST' });

describe('notifications console facade (list, preview, resend, stop; audited)', () => {
  let rt: TestRuntime;
  let smtp: TestSmtp;
  let userId: string;
  let messageId: string;

  beforeAll(async () => {
    smtp = await startTestSmtp();
    rt = await createTestRuntime({ worker: false, env: { SMTP_URL: smtp.url, NOTIFY_BACKOFF_MS: '40', NOTIFY_SEND_ATTEMPTS: '3' } });
    await rt.startWorkers({ schedules: false });
    const user = await insertUser(rt.db, { email: 'console.ana@example.mx', type: 'INDIVIDUAL', country: 'MX', alias: 'Ana' });
    userId = user.id;
    await rt.queues.add(createCapaUser, { userId });
    await waitFor(async () => (await findUserById(rt.db, userId))?.capaUserId, { what: 'in Capa' });
    await rt.queues.add(generateLink, { userId, country: 'MX', requestId: randomUUID(), notify: true });
    messageId = (
      await waitFor(async () => (await notificationsForUser(rt.db, userId)).find((m) => m.status === 'sent'), { what: 'first e-mail' })
    ).id;
  });
  afterAll(async () => {
    await rt?.close();
    await smtp?.close();
  });

  it('lists with filters; viewers see masked addresses and links', async () => {
    const all = await notificationsListData(compliance, new URLSearchParams('status=sent'));
    const row = all.rows.find((r) => r.id === messageId)!;
    expect(row).toMatchObject({ address: 'console.ana@example.mx', status: 'sent', kind: 'kyc_link', attempts: 1 });
    expect(row.linkUrl).toBe((await activeLink(rt.db, userId))!.url);
    expect(all.counts.sent).toBeGreaterThanOrEqual(1);
    expect(
      (await notificationsListData(compliance, new URLSearchParams('status=failed'))).rows.find((r) => r.id === messageId),
    ).toBeUndefined();
    expect((await notificationsListData(compliance, new URLSearchParams('q=console.ana@example.mx'))).total).toBe(1);
    expect(
      (await notificationsListData(compliance, new URLSearchParams('kind=kyc_retry'))).rows.find((r) => r.id === messageId),
    ).toBeUndefined();
    // Malformed filters are dropped, never an error.
    expect((await notificationsListData(compliance, new URLSearchParams('status=bogus&size=7&sort=x'))).total).toBeGreaterThanOrEqual(1);
    const masked = (await notificationsListData(viewer, new URLSearchParams())).rows.find((r) => r.id === messageId)!;
    expect(masked.address).not.toContain('console.ana');
    expect(masked.address).toContain('@example.mx');
    expect(masked.linkUrl).toBe('(hidden for your role)');
  });

  it('previews templates in both languages, and a ledger message as sent', async () => {
    const es = await previewData(compliance, new URLSearchParams('kind=kyc_retry&locale=es'));
    expect(es.ok && es.rendered.subject).toBe('Tu verificación no fue aprobada — así puedes intentarlo de nuevo');
    const en = await previewData(compliance, new URLSearchParams('kind=kyc_retry&locale=en'));
    expect(en.ok && en.rendered.subject).toBe('Your verification was not approved — here is how to try again');
    expect(en.ok && en.rendered.html).toContain('<html lang="en">');
    const bogus = await previewData(compliance, new URLSearchParams('kind=<script>&locale=xx'));
    expect(bogus.ok && bogus.rendered.subject).toBe('Tu enlace de verificación');
    const msg = await previewData(compliance, new URLSearchParams(`message=${messageId}`));
    expect(msg.ok && msg.rendered.text).toContain((await activeLink(rt.db, userId))!.url);
    expect(msg.ok && msg.rendered.text).toContain('Hola, Ana:');
    // A viewer sees the template with sample data, not the customer's name or link.
    const v = await previewData(viewer, new URLSearchParams(`message=${messageId}`));
    expect(v.ok && v.rendered.text).not.toContain('Ana:');
    expect(await previewData(compliance, new URLSearchParams('message=nope'))).toEqual({
      ok: false,
      error: 'notifications:preview.no_message',
    });
  });

  it('resend by hand: sends once per request id (in the chosen language) and is audited', async () => {
    const requestId = `rq${randomUUID().replace(/-/g, '')}`;
    const r1 = await resendMessage(req(), compliance, { messageId, locale: 'en', requestId });
    expect(r1.ok).toBe(true);
    const r2 = await resendMessage(req(), compliance, { messageId, locale: 'en', requestId });
    expect(r2).toEqual({ ok: true, code: 'notifications:actions.already_queued' });
    expect(getFixedT('en')(r2.code)).toBe('Already queued (this form was submitted before).');
    await waitFor(() => smtp.to('console.ana@example.mx').length === 2, { what: 'resent e-mail' });
    const resent = smtp.to('console.ana@example.mx')[1]!;
    expect(resent.subject).toBe('Your verification link');
    expect(resent.headers['content-language']).toBe('en');
    const rows = await notificationsForUser(rt.db, userId);
    expect(rows.filter((r) => r.dedupeKey === `resend:${requestId}`)).toHaveLength(1);
    expect(rows.find((r) => r.dedupeKey === `resend:${requestId}`)).toMatchObject({
      createdBy: 'op-compliance',
      cause: 'operator:op-compliance',
    });
    const audit = await rt.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'notification.resend')
      .where('targetId', '=', userId)
      .execute();
    expect(audit).toHaveLength(2);
    expect(audit[0]).toMatchObject({ actor: 'c@desk.example', outcome: 'queued', targetType: 'user' });
    expect(await resendMessage(req(), compliance, { messageId: 'missing', requestId })).toEqual({
      ok: false,
      code: 'notifications:actions.message_gone',
    });
  });

  it('operator stop of a programme is audited; stopping twice says so', async () => {
    const user = await insertUser(rt.db, { email: 'stop.me@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    const { programme } = await insertProgramme(rt.db, {
      userId: user.id,
      rejectedAt: new Date().toISOString(),
      cadenceDays: [1, 3, 7],
      firstDueAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    const r = await stopProgrammeAction(req(), compliance, programme.id);
    expect(r.ok).toBe(true);
    expect((await programmesForUser(rt.db, user.id))[0]).toMatchObject({
      status: 'stopped',
      stopReason: 'operator',
      stoppedBy: 'op-compliance',
    });
    const again = await stopProgrammeAction(req(), compliance, programme.id);
    expect(again.ok).toBe(false);
    expect(again).toMatchObject({ code: 'notifications:actions.programme_ended_because', values: { status: 'stopped' } });
    // The stored stop reason ('operator') is worded too.
    expect(again.reason).toEqual([{ code: 'notifications:reasons.stopped_by_operator' }]);
    const t = getFixedT('en');
    expect(t(again.code, again.values ?? {})).toBe('This programme is already stopped');
    expect(getFixedT('es')(again.code, again.values ?? {})).toBe('Este programa ya está detenido');
    const audit = await rt.db.selectFrom('auditLog').selectAll().where('action', '=', 'notification.programme.stop').execute();
    expect(audit).toHaveLength(1);
  });
});

describe.each(['sqlite', 'postgres'] as const)('notifications repository on %s', (kind) => {
  it('dedupes messages, one programme per rejection, conversion and filtered listing', async () => {
    if (kind === 'postgres' && !(await postgresAvailable())) return;
    const t = await createTestDb(kind);
    try {
      const db = t.db;
      const u = await insertUser(db, { email: `repo-${kind}@example.mx`, type: 'INDIVIDUAL', country: 'DO' });
      const a = await insertMessage(db, {
        userId: u.id,
        kind: 'kyc_link',
        channel: 'email',
        locale: 'es',
        address: u.email,
        dedupeKey: 'k1',
      });
      const b = await insertMessage(db, {
        userId: u.id,
        kind: 'kyc_link',
        channel: 'email',
        locale: 'es',
        address: u.email,
        dedupeKey: 'k1',
      });
      expect(a.created).toBe(true);
      expect(b.created).toBe(false);
      expect(b.row.id).toBe(a.row.id);
      const at = '2026-01-01T00:00:00.000Z';
      const p1 = await insertProgramme(db, { userId: u.id, rejectedAt: at, cadenceDays: [1], firstDueAt: null });
      const p2 = await insertProgramme(db, { userId: u.id, rejectedAt: at, cadenceDays: [1], firstDueAt: null });
      expect(p1.created).toBe(true);
      expect(p2.created).toBe(false);
      await markReinvited(db, p1.programme.id);
      await recordProgrammeOutcome(db, u.id, 'IN_PROGRESS');
      await recordProgrammeOutcome(db, u.id, 'VERIFIED');
      expect(await conversion(db)).toMatchObject({ rejected: 1, reinvited: 1, resubmitted: 1, verified: 1, active: 1 });
      const list = await listMessages(db, {
        status: 'queued',
        kind: 'kyc_link',
        sort: 'attempts',
        dir: 'asc',
        page: 1,
        pageSize: 10,
        q: u.email,
      });
      expect(list.total).toBe(1);
      expect(list.rows[0]).toMatchObject({ id: a.row.id, externalUserId: u.externalUserId, kycState: 'NOT_STARTED' });
      expect(await rejectionsWithoutProgramme(db, '2000-01-01T00:00:00.000Z')).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
