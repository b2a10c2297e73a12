import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loader as importLoader } from '../../app/routes/imports.$id';
import { loader as downloadLoader } from '../../app/routes/imports.$id_.download';
import { loader as importsLoader } from '../../app/routes/imports._index';
import { loader as progressLoader } from '../../app/routes/imports.$id_.progress';
import { createConsoleI18n } from '../../app/i18n';
import { CreateUserSchema, formErrors } from '../../app/schemas';
import { CapaError } from '../../capa/client.js';
import { commitImport, findImport } from '../../db/repositories/imports.js';
import { notificationsForUser } from '../../db/repositories/notifications.js';
import { describeEmailProblem, checkEmail } from '../../domain/email.js';
import { feedImport } from '../../jobs/imports/orchestration.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { checkRow, DuplicateTracker } from '../../jobs/imports/validator.js';
import { ChannelError, checkEmailAddress } from '../../jobs/notifications/channel.js';
import { EmailChannel } from '../../jobs/notifications/transports.js';
import { readMessages } from '../../lib/stored-message.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { call, get, signInAs, type Browser } from './console-helpers.js';

/**
 * One e-mail rule from the form to the mailbox: internationalised addresses pass the dry run,
 * are created at Capa (the sandbox), get their link and are delivered over SMTPUTF8 by the real
 * worker; an address the rule refuses stops at the dry run with the reason; a delivery the SMTP
 * server refuses shows on the import's page, in its summary and in its results file.
 */

const limits = { maxBytes: 1024 * 1024, maxRows: 1000 };
const english = createConsoleI18n('en');
type Said = { code: string; values?: Record<string, unknown> };
/** What an English reader sees: a message, a row's stored reasons (codes and values). */
const say = (m: Said | null) => (m ? english.t(m.code, m.values ?? {}) : null);
const stored = (reason: string | null) => (reason === null ? null : (readMessages(reason) ?? []).map(say).join('; '));

async function* once(s: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(s, 'utf8');
}

describe('link e-mails of an import: one address rule, outcomes on the import page', () => {
  let rt: TestRuntime;
  let smtp: TestSmtp;
  let compliance: Browser;

  beforeAll(async () => {
    smtp = await startTestSmtp();
    rt = await createTestRuntime({
      env: { SMTP_URL: smtp.url, MAIL_FROM: 'KYC Desk <kyc@desk.example>', NOTIFY_BACKOFF_MS: '40', NOTIFY_SEND_ATTEMPTS: '3' },
    });
    compliance = await signInAs(rt.db, 'compliance');
  }, 60_000);
  afterAll(async () => {
    await rt?.close();
    await smtp?.close();
  });

  async function runImport(csv: string, name: string) {
    const staged = await stageImport(rt.db, { source: once(csv), fileName: name, createdBy: null, limits });
    if (staged.validRows > 0) {
      expect(await commitImport(rt.db, staged.importId, null)).toBe(true);
      await feedImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
      await waitFor(async () => (await findImport(rt.db, staged.importId))?.status === 'completed', {
        timeoutMs: 30_000,
        what: `${name} completed`,
      });
    }
    return staged;
  }

  /** Every link e-mail of the import has left the queue (sent, failed or cancelled). */
  async function mailSettled(importId: string, expected: number) {
    return waitFor(
      async () => {
        const rows = await rt.db
          .selectFrom('importRows')
          .select(['userId'])
          .where('importId', '=', importId)
          .where('status', '=', 'done')
          .execute();
        const mails = (await Promise.all(rows.map((r) => notificationsForUser(rt.db, r.userId!)))).flat();
        return mails.length === expected && mails.every((m) => m.status !== 'queued') ? mails : null;
      },
      { timeoutMs: 30_000, what: 'link e-mails settled' },
    );
  }

  const page = async (id: string, query = '') => {
    const res = await call(importLoader, get(`/imports/${id}${query}`, compliance), { id });
    expect(res.status).toBe(200);
    return res.data;
  };

  it('accented and IDN addresses: dry run accepts, Capa creates, every link e-mail arrives over SMTPUTF8 with the UTF-8 address', async () => {
    const addresses = [
      'sofía.392@example.mx',
      'josé.núñez@example.mx',
      'maría.peña@exämple.mx',
      'françois@example.do',
      'ñandú_5@example.mx',
    ];
    // One written decomposed (e + combining acute), as some spreadsheets export it.
    const decomposed = 'luci\u0301a.6@example.mx';
    const lines = [
      'externalUserId,email,type,alias,country,sendLink',
      ...addresses.map((a, i) => `intl-${i + 1},${a},INDIVIDUAL,,MX,yes`),
      `intl-6,${decomposed},INDIVIDUAL,,MX,yes`,
    ];
    const before = rt.sandbox.stats();
    const staged = await runImport(`${lines.join('\n')}\n`, 'accented.csv');
    expect(staged).toMatchObject({ totalRows: 6, validRows: 6, invalidRows: 0 });

    const mails = await mailSettled(staged.importId, 6);
    expect(mails.map((m) => [m.address, m.status, m.failureReason])).toEqual(
      expect.arrayContaining([...addresses, 'lucía.6@example.mx'].map((a) => [a, 'sent', null])),
    );
    expect(rt.sandbox.stats().usersCreated - before.usersCreated).toBe(6);
    expect(rt.sandbox.users().map((u) => u.email)).toEqual(expect.arrayContaining(['sofía.392@example.mx', 'lucía.6@example.mx']));

    // The SMTP server got each message for the UTF-8 mailbox, asked for with SMTPUTF8.
    for (const a of [...addresses, 'lucía.6@example.mx']) {
      const got = smtp.to(a);
      expect(got, a).toHaveLength(1);
      expect(got[0]!.smtpUtf8).toBe(true);
      expect(got[0]!.raw).toContain(a.split('@')[0]);
    }
    // An IDN domain travels as its A-label in the message header.
    expect(smtp.to('maría.peña@exämple.mx')[0]!.to).toEqual(['maría.peña@xn--exmple-cua.mx']);

    const d = await page(staged.importId, '?rows=all');
    expect(d.emails).toEqual({ expected: 6, sent: 6, failed: 0, pending: 0, cancelled: 0, missing: 0 });
    expect(d.rows.map((r: { emailOutcome: string }) => r.emailOutcome)).toEqual(Array(6).fill('sent'));
  });

  it('an address the rule refuses stops at the dry run with the reason — the same verdict as the form, the mail channel and the sandbox', async () => {
    const csv = [
      'externalUserId,email,type,alias,country,sendLink',
      'rule-1,ana@localhost,INDIVIDUAL,,MX,yes',
      'rule-2,"""ana lópez""@example.mx",INDIVIDUAL,,MX,yes',
      'rule-3,ana@example.mx.,INDIVIDUAL,,MX,yes',
      'rule-4,valeria.ruíz@example.mx,INDIVIDUAL,,MX,no',
    ].join('\n');
    const staged = await stageImport(rt.db, { source: once(`${csv}\n`), fileName: 'rule.csv', createdBy: null, limits });
    expect(staged).toMatchObject({ totalRows: 4, validRows: 1, invalidRows: 3, byReason: { bad_email: 3 } });
    const rows = await rt.db.selectFrom('importRows').selectAll().where('importId', '=', staged.importId).orderBy('rowNo').execute();
    expect(rows.map((r) => [r.status, stored(r.reason)])).toEqual([
      ['invalid', '"ana@localhost" is not a valid e-mail address: the domain has no dot (like example.com)'],
      ['invalid', '""ana lópez"@example.mx" is not a valid e-mail address: quoted local parts ("…"@) are not accepted'],
      ['invalid', '"ana@example.mx." is not a valid e-mail address: the domain starts or ends with a dot, or has two dots in a row'],
      ['pending', null],
    ]);
    // The dry-run page shows the reason.
    const d = await page(staged.importId);
    expect(d.rows.map((r: { reasons: Said[] }) => r.reasons.map(say).join('; '))).toContain(
      '"ana@localhost" is not a valid e-mail address: the domain has no dot (like example.com)',
    );

    // Every door gives the same verdict for the same address.
    const probe = [
      'sofía.probe@example.mx',
      'ana.probe@exämple.mx',
      'ana@localhost',
      '"ana"@example.mx',
      'ana lópez@example.mx',
      'ana@example.mx.',
      'ana😀@example.mx',
      `${'a'.repeat(65)}@example.mx`,
      'ana@[127.0.0.1]',
    ];
    let n = 0;
    for (const address of probe) {
      const rule = checkEmail(address);
      const form = CreateUserSchema.safeParse({ email: address, type: 'INDIVIDUAL', country: 'MX', requestId: 'req-12345678' });
      const row = checkRow(
        { rowNo: 1, line: 2, values: { externalUserId: '', email: address, type: '', alias: '', country: 'MX', sendLink: '' } },
        new DuplicateTracker(),
      );
      const channel = checkEmailAddress(address);
      const capa = await rt.capa.createUser({ type: 'INDIVIDUAL', email: address, externalUserId: `probe-${++n}` }).then(
        () => 'created',
        (err: unknown) => (err instanceof CapaError ? `${err.status} ${err.code}` : String(err)),
      );
      if (rule.ok) {
        expect([form.success, row.ok, channel, capa], address).toEqual([true, true, null, 'created']);
        expect(form.success && form.data.email).toBe(rule.email);
      } else {
        const why = describeEmailProblem(rule);
        expect([form.success, row.reasonCode, capa], address).toEqual([false, 'bad_email', '400 BAD_REQUEST']);
        // The form's and the row's words come from the catalogue, and say what the rule says.
        expect(!form.success && say(formErrors(form.error).email!)).toBe(`Enter a valid e-mail address: ${why}.`);
        expect(stored(row.reason)).toContain(why);
        expect(channel).toContain(why);
      }
    }
  });

  it('an e-mail the SMTP server refuses: failed with its reason on the import page, in the summary, the list and the results file', async () => {
    smtp.refuse.set('rechazo.ñ@example.mx', [550, 'No such user here']);
    const csv = [
      'externalUserId,email,type,alias,country,sendLink',
      'smtp-1,bien.á@example.mx,INDIVIDUAL,,MX,yes',
      'smtp-2,rechazo.ñ@example.mx,INDIVIDUAL,,MX,yes',
      'smtp-3,sin.link@example.mx,INDIVIDUAL,,MX,no',
    ].join('\n');
    const staged = await runImport(`${csv}\n`, 'refused.csv');
    const mails = await mailSettled(staged.importId, 2);
    expect(mails.find((m) => m.address === 'rechazo.ñ@example.mx')).toMatchObject({
      status: 'failed',
      failureReason: expect.stringMatching(/SMTP 550.*No such user here/),
    });
    expect(smtp.to('bien.á@example.mx')).toHaveLength(1);

    const d = await page(staged.importId, '?rows=all');
    expect(d.import.status).toBe('completed');
    expect(d.emails).toEqual({ expected: 2, sent: 1, failed: 1, pending: 0, cancelled: 0, missing: 0 });
    expect(
      d.rows.map((r: { email: string; status: string; emailOutcome: string; emailReasons: Said[] }) => [
        r.email,
        r.status,
        r.emailOutcome,
        r.emailReasons.map(say).join(': '),
      ]),
    ).toEqual([
      ['bien.á@example.mx', 'done', 'sent', ''],
      ['rechazo.ñ@example.mx', 'done', 'failed', expect.stringMatching(/^the mail server refused it \(SMTP 550\): .*No such user here/)],
      ['sin.link@example.mx', 'done', 'none', ''],
    ]);

    // The operator can list exactly the rows whose e-mail failed.
    const failedOnly = await page(staged.importId, '?rows=email_failed');
    expect(failedOnly.filter).toBe('email_failed');
    expect(failedOnly.rows.map((r: { email: string }) => r.email)).toEqual(['rechazo.ñ@example.mx']);

    // The live progress poll carries the same counts, and the list of imports flags the import.
    const poll = await call(progressLoader, get(`/imports/${staged.importId}/progress`, compliance), { id: staged.importId });
    expect(poll.data.emails).toMatchObject({ sent: 1, failed: 1 });
    const list = await call(importsLoader, get('/imports', compliance));
    expect(list.data.rows.find((r: { id: string }) => r.id === staged.importId)).toMatchObject({ status: 'completed', failedEmails: 1 });
    expect(list.data.rows.find((r: { fileName: string }) => r.fileName === 'accented.csv')).toMatchObject({ failedEmails: 0 });

    // The results file says it too.
    const csvOut = await call(downloadLoader, get(`/imports/${staged.importId}/download?kind=results`, compliance), {
      id: staged.importId,
    });
    const lines = String(csvOut.data)
      .replace(/^\uFEFF/, '')
      .trim()
      .split(/\r\n/);
    expect(lines[0]).toBe(
      'row,line,externalUserId,email,type,alias,country,sendLink,status,reason,customerId,customerUrl,emailStatus,emailReason',
    );
    expect(lines[1]).toMatch(/^1,2,smtp-1,bien\.á@example\.mx,.*,sent,$/);
    expect(lines[2]).toMatch(/^2,3,smtp-2,rechazo\.ñ@example\.mx,.*,failed,the mail server refused it \(SMTP 550\): .*No such user here/);
    expect(lines[3]).toMatch(/^3,4,smtp-3,sin\.link@example\.mx,.*,,$/);
    // The errors file stays the re-uploadable shape.
    const errors = await call(downloadLoader, get(`/imports/${staged.importId}/download?kind=errors`, compliance), { id: staged.importId });
    expect(
      String(errors.data)
        .replace(/^\uFEFF/, '')
        .split(/\r\n/)[0],
    ).toBe('row,line,externalUserId,email,type,alias,country,sendLink,status,reason,customerId,customerUrl');
  });

  it('a mail server without SMTPUTF8 refuses a UTF-8 mailbox: a permanent failure that says why; ASCII addresses still go', async () => {
    const strict = await startTestSmtp(0, { smtpUtf8: false });
    const channel = new EmailChannel({ url: strict.url, from: 'KYC Desk <kyc@desk.example>', pool: false });
    try {
      const rendered = { subject: 'Hola', text: 'x', html: '<p>x</p>', short: 'x' };
      const err = await channel.send({ id: 'strict-1', to: 'sofía@example.mx', rendered, locale: 'es', tags: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChannelError);
      expect(err).toMatchObject({ permanent: true, code: 'smtp-553' });
      expect((err as Error).message).toMatch(
        /^SMTP 553 at RCPT TO: .*Non-ASCII.*\(an internationalised address: this mail server does not accept SMTPUTF8\)$/,
      );
      await channel.send({ id: 'strict-2', to: 'ana@exämple.mx', rendered, locale: 'es', tags: {} });
      expect(strict.to('ana@exämple.mx')).toHaveLength(1);
      expect(strict.to('ana@exämple.mx')[0]!.smtpUtf8).toBe(false);
    } finally {
      await channel.close();
      await strict.close();
    }
  });
});
