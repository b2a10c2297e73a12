import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activeLink, linksForUser } from '../../db/repositories/links.js';
import { getMessage, notificationsForUser } from '../../db/repositories/notifications.js';
import { fetchDetails } from '../../jobs/definitions/fetch-details.js';
import { generateLink } from '../../jobs/definitions/generate-link.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';
import { action as newUserAction, loader as newUserLoader } from '../../app/routes/users.new';
import { action as userAction, loader as userLoader } from '../../app/routes/users.$id';
import { action as notificationsAction, loader as notificationsLoader } from '../../app/routes/notifications._index';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { call, get, post, signInAs, type Browser } from './console-helpers.js';
import { createConsoleI18n } from '../../app/i18n';

const english = createConsoleI18n('en');

/**
 * Links issued from the console are e-mailed the way an import's are: the console actions, the
 * real worker, the Capa sandbox over HTTP and a real SMTP server that records what it receives.
 */
let rt: TestRuntime;
let smtp: TestSmtp;
let compliance: Browser & { operatorId: string };

beforeAll(async () => {
  smtp = await startTestSmtp();
  rt = await createTestRuntime({
    worker: false,
    env: { SMTP_URL: smtp.url, MAIL_FROM: 'KYC Desk <kyc@desk.example>', NOTIFY_BACKOFF_MS: '40' },
  });
  await rt.startWorkers({ schedules: false });
  // The first wait on a queue opens its event stream; warm it so actions report "completed".
  await waitFor(
    async () =>
      (await rt.queues.addAndWait(fetchDetails, { userId: 'warm-up', requestId: `warm-${Date.now()}` }, 2000)).state === 'completed',
    { timeoutMs: 20_000, what: 'capa queue warm' },
  );
  compliance = await signInAs(rt.db, 'compliance');
});

afterAll(async () => {
  await rt?.close();
  await smtp?.close();
});

async function createUser(fields: Record<string, string>) {
  const form = await call(newUserLoader, get('/users/new', compliance));
  expect(form.data.localeByCountry).toEqual({ MX: 'es', DO: 'es' });
  const res = await call(
    newUserAction,
    post('/users/new', compliance, { type: 'INDIVIDUAL', country: 'MX', sendLink: 'on', ...fields, requestId: form.data.requestId }),
  );
  expect(res.status).toBe(302);
  return { id: /^\/users\/([^?]+)/.exec(res.location ?? '')![1]!, requestId: form.data.requestId as string };
}

const userPage = async (id: string) => (await call(userLoader, get(`/users/${id}`, compliance), { id })).data;
const act = (id: string, fields: Record<string, string>) => call(userAction, post(`/users/${id}`, compliance, fields), { id });
const ledger = async (id: string) =>
  (await call(notificationsLoader, get(`/notifications?user=${id}`, compliance))).data.rows as Array<{
    status: string;
    kind: string;
    linkUrl: string;
    locale: string;
  }>;

/** Waits until the link job of `requestId` has finished (its hook, which queues the e-mail, runs inside it). */
const linkJobDone = (requestId: string) =>
  waitFor(
    () =>
      rt.db
        .selectFrom('jobRuns')
        .select('id')
        .where('jobId', '=', `link-${requestId}`)
        .where('status', '=', 'completed')
        .executeTakeFirst(),
    { what: 'link job completed' },
  );

const sentFor = (userId: string, n: number) =>
  waitFor(
    async () => {
      const rows = await notificationsForUser(rt.db, userId);
      return rows.length === n && rows.every((r) => r.status === 'sent') ? rows : null;
    },
    { what: `${n} message(s) sent`, timeoutMs: 15_000 },
  );

describe('console links are e-mailed', () => {
  const email = 'lucia.console@example.mx';
  let userId: string;
  let createRequestId: string;

  it('"Send KYC link now" e-mails the link once, in the chosen language; the ledger and the timeline show it', async () => {
    const created = await createUser({ email, alias: 'Lucía', locale: 'en' });
    userId = created.id;
    createRequestId = created.requestId;
    const [row] = await sentFor(userId, 1);
    const link = (await activeLink(rt.db, userId))!;
    expect(row).toMatchObject({
      kind: 'kyc_link',
      locale: 'en',
      address: email,
      linkId: link.id,
      linkUrl: link.url,
      createdBy: compliance.operatorId,
    });

    const mails = smtp.to(email);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toBe('Your verification link');
    expect(mails[0]!.headers['content-language']).toBe('en');
    expect(mails[0]!.text).toContain(link.url);
    expect(mails[0]!.html).toContain(`href="${link.url}"`);

    expect(await ledger(userId)).toEqual([expect.objectContaining({ kind: 'kyc_link', status: 'sent', linkUrl: link.url, locale: 'en' })]);
    const page = await userPage(userId);
    const message = page.timeline.find((e: { kind: string }) => e.kind === 'message');
    type Said = string | { code: string; values?: Record<string, unknown> };
    const say = (m: Said) => (typeof m === 'string' ? m : english.t(m.code, m.values ?? {}));
    expect(say(message.title)).toBe('E-mail “Verification link” — sent');
    expect(message.facts.map(([k, v]: [Said, Said]) => [say(k), say(v)])).toContainEqual(['link', link.url]);
    // The resend form offers the language the customer was written to in.
    expect(page.emailLocale).toBe('en');

    const audit = await rt.db
      .selectFrom('auditLog')
      .select(['detail'])
      .where('targetId', '=', userId)
      .where('action', '=', 'user.create')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.detail!)).toMatchObject({ sendLink: true, emailLink: true, locale: 'en' });
  });

  it('a second run of the same link job sends nothing more', async () => {
    const link = (await activeLink(rt.db, userId))!;
    // The create action asked for the link with the form's request id; a second job with it is the same link request.
    const requestId = createRequestId;
    const again = await rt.queues.addAndWait(
      generateLink,
      { userId, country: 'MX', redirectUri: null, requestId, requestedBy: compliance.operatorId, notify: true, locale: 'en' },
      10_000,
      { jobId: `rerun-${requestId}` },
    );
    expect(again.state).toBe('completed');
    expect((again as { result: { linkId: string } }).result.linkId).toBe(link.id);
    expect(await notificationsForUser(rt.db, userId)).toHaveLength(1);
    expect(smtp.to(email)).toHaveLength(1);
  });

  it('"Resend link" e-mails the new link (a double click: one link, one e-mail); with "don\'t e-mail" nothing is sent', async () => {
    const first = (await activeLink(rt.db, userId))!;
    const page = await userPage(userId);
    const fields = { intent: 'link', country: 'MX', locale: page.emailLocale, requestId: 'req-resend-mail-1' };
    const [a, b] = await Promise.all([act(userId, fields), act(userId, fields)]);
    expect(a.data.tone).toBe('ok');
    expect(a.data.code).toBe('users:actions.link_resent_emailed');
    expect(english.t(a.data.code)).toMatch(/superseded\. It is being e-mailed/);
    expect(b.data.link).toBe(a.data.link);
    const second = (await activeLink(rt.db, userId))!;
    expect(second.id).not.toBe(first.id);

    const rows = await sentFor(userId, 2);
    expect(rows[0]).toMatchObject({ linkId: second.id, locale: 'en' });
    const mails = smtp.to(email);
    expect(mails).toHaveLength(2);
    expect(mails[1]!.text).toContain(second.url);
    expect(mails[1]!.text).not.toContain(first.url);

    const quiet = await act(userId, { intent: 'link', country: 'MX', locale: 'en', noEmail: 'on', requestId: 'req-resend-quiet-1' });
    expect(quiet.data.tone).toBe('ok');
    expect(quiet.data.code).toBe('users:actions.link_resent_not_emailed');
    expect(english.t(quiet.data.code)).toMatch(/Not e-mailed\./);
    const third = (await activeLink(rt.db, userId))!;
    expect(third.id).not.toBe(second.id);
    expect(quiet.data.link).toBe(third.url);
    // The job has completed, hook included: a message for this link would exist by now.
    expect((await notificationsForUser(rt.db, userId)).map((m) => m.linkId)).not.toContain(third.id);
    expect(smtp.to(email)).toHaveLength(2);

    const audits = await rt.db
      .selectFrom('auditLog')
      .select(['action', 'detail'])
      .where('targetId', '=', userId)
      .where('action', '=', 'link.resend')
      .execute();
    expect(audits.map((r) => JSON.parse(r.detail!).emailLink).sort()).toEqual([false, true, true]);
  });

  it('"don\'t e-mail" on /users/new issues the link and sends nothing', async () => {
    const quietEmail = 'en.persona@example.mx';
    const { id, requestId } = await createUser({ email: quietEmail, noEmail: 'on' });
    await linkJobDone(requestId);
    expect(await linksForUser(rt.db, id)).toHaveLength(1);
    expect((await userPage(id)).user.kycState).toBe('LINK_ISSUED');
    expect(await ledger(id)).toEqual([]);
    expect(await notificationsForUser(rt.db, id)).toEqual([]);
    expect(smtp.to(quietEmail)).toHaveLength(0);
    const page = await userPage(id);
    expect(page.timeline.some((e: { kind: string }) => e.kind === 'message')).toBe(false);
    // Nothing was written to this customer yet: the language follows the country.
    expect(page.emailLocale).toBe('es');
  });

  it('a link recorded by a run that stopped before its e-mail is e-mailed by the next run, once', async () => {
    // Same state as a process stopping between recording the link and running its hook: the link
    // and its claim exist, no message does. The job's retry (same request id) sends it once.
    const { id } = await createUser({ email: 'retry.run@example.mx', sendLink: '' });
    await waitFor(async () => (await userPage(id)).user.capaSync === 'created', { what: 'created in Capa' });
    const payload = {
      userId: id,
      country: 'MX' as const,
      redirectUri: null,
      requestId: 'req-stopped-run-1',
      requestedBy: compliance.operatorId,
    };
    expect((await rt.queues.addAndWait(generateLink, payload, 10_000)).state).toBe('completed');
    expect(await notificationsForUser(rt.db, id)).toEqual([]);
    for (const n of [1, 2]) {
      const r = await rt.queues.addAndWait(generateLink, { ...payload, notify: true }, 10_000, { jobId: `retry-run-${n}` });
      expect(r.state).toBe('completed');
    }
    const [row] = await sentFor(id, 1);
    expect(row).toMatchObject({ locale: 'es', linkId: (await activeLink(rt.db, id))!.id });
    expect((await getMessage(rt.db, row!.id))?.attempts).toBe(1);
    expect(smtp.to('retry.run@example.mx')).toHaveLength(1);
  });

  it('a second run of a link job whose link went out with another message (a resend from the ledger) does not e-mail it again', async () => {
    const user = await rt.db.selectFrom('users').selectAll().where('email', '=', 'retry.run@example.mx').executeTakeFirstOrThrow();
    // The link expired (as the expiry job records it): the ledger's resend asks for a fresh one.
    await rt.db.updateTable('users').set({ linkExpired: 1 }).where('id', '=', user.id).execute();
    const [original] = await notificationsForUser(rt.db, user.id);
    const r = await call(
      notificationsAction,
      post('/notifications', compliance, { intent: 'resend', messageId: original!.id, locale: '', requestId: 'req-ledger-resend-1' }),
    );
    expect(r.data).toMatchObject({ ok: true });
    const rows = await sentFor(user.id, 2);
    const fresh = (await activeLink(rt.db, user.id))!;
    expect(rows[0]).toMatchObject({ linkId: fresh.id, dedupeKey: 'resend:req-ledger-resend-1' });

    const again = await rt.queues.addAndWait(
      generateLink,
      { userId: user.id, country: 'MX', requestId: 'resend-req-ledger-resend-1', requestedBy: compliance.operatorId, notify: true },
      10_000,
      { jobId: 'ledger-resend-rerun' },
    );
    expect(again.state).toBe('completed');
    expect(await notificationsForUser(rt.db, user.id)).toHaveLength(2);
    expect(smtp.to('retry.run@example.mx')).toHaveLength(2);
  });
});
