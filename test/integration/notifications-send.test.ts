import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { generateLink } from '../../jobs/definitions/generate-link.js';
import { sendNotification } from '../../jobs/definitions/send-notification.js';
import { getMessage, notificationsForUser } from '../../db/repositories/notifications.js';
import { activeLink } from '../../db/repositories/links.js';
import { findUserById, insertUser } from '../../db/repositories/users.js';
import type { User } from '../../db/schema.js';
import { queueMessage, type NotifyDeps } from '../../jobs/notifications/programme.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';
import { logger } from '../../lib/logger.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

let rt: TestRuntime;
let smtp: TestSmtp;
let deps: NotifyDeps;

async function customerInCapa(email: string, extra: { alias?: string } = {}): Promise<User> {
  const user = await insertUser(rt.db, { email, type: 'INDIVIDUAL', country: 'MX', alias: extra.alias ?? null });
  await rt.queues.add(createCapaUser, { userId: user.id });
  return waitFor(
    async () => {
      const u = await findUserById(rt.db, user.id);
      return u?.capaUserId ? u : null;
    },
    { what: 'customer created in Capa' },
  );
}

const rowFor = (userId: string) => waitFor(async () => (await notificationsForUser(rt.db, userId))[0], { what: 'ledger row' });
const settled = (id: string, status = 'sent') =>
  waitFor(
    async () => {
      const r = await getMessage(rt.db, id);
      return r && r.status === status ? r : null;
    },
    { what: `message ${status}`, timeoutMs: 15_000 },
  );

describe('notifications: e-mail over real SMTP', () => {
  beforeAll(async () => {
    smtp = await startTestSmtp();
    rt = await createTestRuntime({
      worker: false,
      env: { SMTP_URL: smtp.url, MAIL_FROM: 'KYC Desk <kyc@desk.example>', NOTIFY_BACKOFF_MS: '40', NOTIFY_SEND_ATTEMPTS: '4' },
    });
    await rt.startWorkers({ schedules: false });
    deps = { db: rt.db, enqueue: rt.queues, env: rt.env, logger };
  });
  afterAll(async () => {
    await rt?.close();
    await smtp?.close();
  });

  it('a link generated with notify is e-mailed in Spanish (MX) with the link in text and HTML, and the right headers', async () => {
    const user = await customerInCapa('ana.link@example.mx', { alias: 'Ana <b>López</b>' });
    await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: true });
    const row = await rowFor(user.id);
    const sent = await settled(row.id);
    const link = (await activeLink(rt.db, user.id))!;
    expect(sent).toMatchObject({
      kind: 'kyc_link',
      channel: 'email',
      locale: 'es',
      address: 'ana.link@example.mx',
      linkId: link.id,
      linkUrl: link.url,
      attempts: 1,
      status: 'sent',
    });
    expect(sent.sentAt).toBeTruthy();

    const [mail] = smtp.to('ana.link@example.mx');
    expect(smtp.to('ana.link@example.mx')).toHaveLength(1);
    expect(mail!.subject).toBe('Tu enlace de verificación');
    expect(mail!.from).toBe('KYC Desk <kyc@desk.example>');
    expect(mail!.headers['message-id']).toBe(`<${row.id}@desk.example>`);
    expect(mail!.headers['x-kyc-desk-notification']).toBe(row.id);
    expect(mail!.headers['x-kyc-desk-kind']).toBe('kyc_link');
    expect(mail!.headers['content-language']).toBe('es');
    expect(mail!.headers['auto-submitted']).toBe('auto-generated');
    expect(mail!.text).toContain(link.url);
    expect(mail!.text).toContain('Hola, Ana <b>López</b>:');
    expect(mail!.html).toContain(`href="${link.url}"`);
    // The alias is escaped in HTML: an operator-entered name never becomes markup.
    expect(mail!.html).toContain('Ana &lt;b&gt;López&lt;/b&gt;');
    expect(mail!.html).not.toContain('<b>López</b>');
    // The link in the message is the customer's live link: the hosted page opens.
    const page = await fetch(link.url);
    expect(page.status).toBe(200);
  });

  it('a link generated without notify sends nothing', async () => {
    const user = await customerInCapa('no.notify@example.mx');
    const requestId = randomUUID();
    await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId });
    await waitFor(() => activeLink(rt.db, user.id), { what: 'link' });
    await waitFor(
      () =>
        rt.db
          .selectFrom('jobRuns')
          .select('id')
          .where('jobId', '=', `link-${requestId}`)
          .where('status', '=', 'completed')
          .executeTakeFirst(),
      { what: 'link job done' },
    );
    expect(await notificationsForUser(rt.db, user.id)).toEqual([]);
    expect(smtp.to('no.notify@example.mx')).toHaveLength(0);
  });

  it('a recipient the SMTP server refuses (550) is a permanent failure: recorded with the reason, not retried', async () => {
    smtp.refuse.set('gone@example.mx', [550, 'No such user here']);
    const user = await customerInCapa('gone@example.mx');
    await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: true });
    const row = await rowFor(user.id);
    const failed = await settled(row.id, 'failed');
    expect(failed.failureReason).toMatch(/550/);
    expect(failed.failureReason).toMatch(/No such user/);
    expect(failed.attempts).toBe(1);
    expect(failed.failedAt).toBeTruthy();
    expect(smtp.to('gone@example.mx')).toHaveLength(0);
  });

  it('a malformed address fails before SMTP with a clear reason', async () => {
    // Imported data can carry anything; the ledger must say why nothing was sent.
    const user = await insertUser(rt.db, { email: 'not an address@@example', type: 'INDIVIDUAL', country: 'DO' });
    const { row } = await queueMessage(deps, {
      user,
      kind: 'kyc_link',
      dedupeKey: `test:${randomUUID()}`,
      link: { id: 'l-x', url: 'https://verify.example/s/x' },
    });
    const failed = await settled(row.id, 'failed');
    expect(failed.failureReason).toMatch(/not a valid e-mail address/);
    expect(failed.attempts).toBe(0);
  });

  it('SMTP down, then up: the message is retried with backoff and delivered exactly once', async () => {
    const user = await customerInCapa('retry.me@example.mx');
    await smtp.stop();
    try {
      await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: true });
      const row = await rowFor(user.id);
      const waiting = await waitFor(
        async () => {
          const r = await getMessage(rt.db, row.id);
          return r && r.status === 'queued' && r.attempts >= 2 && r.lastError ? r : null;
        },
        { what: 'a failed attempt recorded while SMTP is down' },
      );
      expect(waiting.lastError).toMatch(/SMTP unreachable|ECONNREFUSED/);
    } finally {
      await smtp.start();
    }
    const row = await rowFor(user.id);
    const sent = await settled(row.id);
    expect(sent.attempts).toBeGreaterThanOrEqual(3);
    expect(smtp.to('retry.me@example.mx')).toHaveLength(1);
  });

  it('a temporary 451 is retried and then delivered', async () => {
    smtp.tempFailures.set('busy@example.mx', 1);
    const user = await customerInCapa('busy@example.mx');
    await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: true });
    const row = await rowFor(user.id);
    const sent = await settled(row.id);
    expect(sent.attempts).toBe(2);
    expect(smtp.to('busy@example.mx')).toHaveLength(1);
  });

  it('SMTP down for every attempt: recorded as failed with the reason after the last attempt', async () => {
    const user = await customerInCapa('never@example.mx');
    await smtp.stop();
    try {
      await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: true });
      const row = await rowFor(user.id);
      const failed = await settled(row.id, 'failed');
      expect(failed.attempts).toBe(4);
      expect(failed.failureReason).toMatch(/gave up after 4 attempt\(s\)/);
    } finally {
      await smtp.start();
    }
    expect(smtp.to('never@example.mx')).toHaveLength(0);
  });

  it('duplicated jobs and a duplicated ledger request send one message', async () => {
    const user = await customerInCapa('twice@example.mx');
    const link = { id: 'dup-link', url: 'https://verify.example/s/dup' };
    const key = `test:${randomUUID()}`;
    const [a, b] = await Promise.all([
      queueMessage(deps, { user, kind: 'kyc_link', dedupeKey: key, link }),
      queueMessage(deps, { user, kind: 'kyc_link', dedupeKey: key, link }),
    ]);
    expect(a.row.id).toBe(b.row.id);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    // Five more jobs for the same row, each with its own id (a relay, a double click, a replay).
    await Promise.all(
      [1, 2, 3, 4, 5].map((i) => rt.queues.add(sendNotification, { notificationId: a.row.id }, { jobId: `dup-${a.row.id}-${i}` })),
    );
    const sent = await settled(a.row.id);
    await waitFor(
      async () => {
        const counts = await rt.queues.queue('notifications').getJobCounts('active', 'waiting', 'delayed');
        return counts.active + counts.waiting + counts.delayed === 0;
      },
      { what: 'duplicate jobs drained', timeoutMs: 15_000 },
    );
    expect(smtp.to('twice@example.mx')).toHaveLength(1);
    expect(sent.attempts).toBe(1);
    expect((await notificationsForUser(rt.db, user.id)).length).toBe(1);
  });

  it('a message whose link was superseded before sending is cancelled, not sent', async () => {
    const user = await customerInCapa('superseded@example.mx');
    await smtp.stop();
    let firstId: string;
    try {
      await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: true });
      firstId = (await rowFor(user.id)).id;
      await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: false });
      await waitFor(
        async () => {
          const l = await activeLink(rt.db, user.id);
          const first = await getMessage(rt.db, firstId);
          return l && first && l.id !== first.linkId ? l : null;
        },
        { what: 'a newer link' },
      );
    } finally {
      await smtp.start();
    }
    const cancelled = await settled(firstId, 'cancelled');
    expect(cancelled.failureReason).toMatch(/superseded/);
    expect(smtp.to('superseded@example.mx')).toHaveLength(0);
  });
});
