import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitImport, findImport } from '../../db/repositories/imports.js';
import { notificationsForUser, programmesForUser } from '../../db/repositories/notifications.js';
import { activeLink, linksForUser } from '../../db/repositories/links.js';
import { findUserByExternalId, stateHistory } from '../../db/repositories/users.js';
import type { User, WebhookDelivery } from '../../db/schema.js';
import { feedImport } from '../../jobs/imports/orchestration.js';
import { fetchDetails } from '../../jobs/definitions/fetch-details.js';
import { refreshScan } from '../../jobs/definitions/refresh-scan.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { runNotificationSweep, type NotifyDeps } from '../../jobs/notifications/programme.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';
import { logger } from '../../lib/logger.js';
import { createTestRuntime, postgresAvailable, waitFor, type TestRuntime } from '../support/runtime.js';

/**
 * Capa retries an undelivered webhook for about 31 minutes (and a failed one can be retried by
 * hand later), so the first attempt's events can reach us after KYC Desk has re-invited a rejected
 * customer. Everything real: an import with sendLink=yes, the sandbox over HTTP (its notification
 * log and manual retry), the webhook intake, BullMQ workers on Redis, SQLite, SMTP.
 */

const RETRY_SUBJECT = 'Tu verificación no fue aprobada — así puedes intentarlo de nuevo';
const LINK_SUBJECT = 'Tu enlace de verificación';
const N = 3;
// PostgreSQL too: there the customer's row lock (FOR UPDATE) orders the re-invitation lookups.
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

let rt: TestRuntime;
let smtp: TestSmtp;
let deps: NotifyDeps;

interface Customer {
  user: User;
  email: string;
  /** Capa's notification ids of the first attempt, dropped on the way (FAILED in Capa's log). */
  notifications: { created: string; review: string; rejected: string };
}

async function importWithLinks(tag: string, n: number): Promise<User[]> {
  const lines = ['externalUserId,email,type,alias,country,sendLink'];
  for (let i = 0; i < n; i++) lines.push(`${tag}-${i},${tag}.${i}@example.mx,INDIVIDUAL,,MX,yes`);
  async function* source(): AsyncGenerator<Uint8Array> {
    yield Buffer.from(`${lines.join('\n')}\n`);
  }
  const staged = await stageImport(rt.db, {
    source: source(),
    fileName: `${tag}.csv`,
    createdBy: null,
    limits: { maxBytes: 1 << 20, maxRows: 100 },
  });
  expect(await commitImport(rt.db, staged.importId, null)).toBe(true);
  // The import relay's schedule is off here: feed (and finally complete) the import by hand.
  await waitFor(
    async () =>
      (await feedImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId)).completed ||
      (await findImport(rt.db, staged.importId))?.status === 'completed',
    {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'import completed',
    },
  );
  const users: User[] = [];
  for (let i = 0; i < n; i++) users.push((await findUserByExternalId(rt.db, `${tag}-${i}`))!);
  return users;
}

const mails = (c: Customer) => smtp.to(c.email);
const retryMails = (c: Customer) => mails(c).filter((m) => m.subject === RETRY_SUBJECT);
const capaLinks = (c: Customer) => rt.sandbox.users().find((u) => u.externalUserId === c.user.externalUserId)!.links;
const inboxOf = (c: Customer) =>
  rt.db.selectFrom('webhookInbox').selectAll().where('externalUserId', '=', c.user.externalUserId).orderBy('id').execute();

/** Every delivery stored so far processed, and every Get KYC Details it asked for answered. */
async function settled() {
  await rt.sandbox.flushDeliveries();
  await waitFor(
    async () => {
      if (await rt.db.selectFrom('webhookInbox').select('id').where('status', '=', 'received').executeTakeFirst()) return false;
      for (const q of ['webhooks', 'capa'] as const) {
        const c = await rt.queues.queue(q).getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused');
        if (Object.values(c).some((n) => n > 0)) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'deliveries processed and details answered' },
  );
}

/** The notification sweep (its schedule is off in tests) until nothing is left to do now. */
async function sweepUntilQuiet() {
  for (let i = 0; i < 20; i++) {
    const r = await runNotificationSweep(deps, new Date());
    await settled();
    const queued = await rt.db.selectFrom('notifications').select('id').where('status', '=', 'queued').executeTakeFirst();
    if (!queued && r.started === 0 && r.linksRequested === 0 && r.linksAttached === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('the notification sweep did not settle');
}

/** One stale-status refresh over every customer (thresholds are 0 here). */
async function refreshCycle() {
  const before = await rt.db
    .selectFrom('refreshRuns')
    .select((eb) => eb.fn.max('id').as('m'))
    .executeTakeFirst();
  await rt.queues.add(refreshScan, {});
  await waitFor(
    async () =>
      (
        await rt.db
          .selectFrom('refreshRuns')
          .select('status')
          .where('id', '>', Number(before?.m ?? 0))
          .where('kind', '=', 'scheduled')
          .executeTakeFirst()
      )?.status === 'done',
    { timeoutMs: 30_000, intervalMs: 100, what: 'refresh cycle done' },
  );
  await settled();
}

for (const kind of kinds)
  describe(`late Capa retries after a re-invitation (${kind})`, () => {
    const customers: Customer[] = [];

    beforeAll(async () => {
      smtp = await startTestSmtp();
      rt = await createTestRuntime({
        dbKind: kind,
        worker: false,
        env: {
          SMTP_URL: smtp.url,
          NOTIFY_BACKOFF_MS: '40',
          NOTIFY_SEND_ATTEMPTS: '3',
          REFRESH_STALE_LINK_ISSUED_MINUTES: '0',
          REFRESH_STALE_IN_PROGRESS_MINUTES: '0',
          REFRESH_STALE_REVIEW_NEEDED_MINUTES: '0',
        },
      });
      await rt.startWorkers({ schedules: false });
      deps = { db: rt.db, enqueue: rt.queues, env: rt.env, logger };
    });
    afterAll(async () => {
      await rt?.close();
      await smtp?.close();
    });

    it(
      'imported with sendLink=yes, rejected, re-invited once: one "try again" e-mail with a second link',
      { timeout: 60_000 },
      async () => {
        const users = await importWithLinks('late', N);
        for (const user of users) {
          const email = user.email;
          await waitFor(() => smtp.to(email).length === 1, { what: `link e-mail to ${email}` });
          expect(smtp.to(email)[0]!.subject).toBe(LINK_SUBJECT);
        }
        // The customers submit; Capa reviews, then rejects. None of the three webhooks reaches us
        // (our endpoint failing, say): Capa records them FAILED and retries them later.
        rt.sandbox.setDelivery({ dropRate: 1 });
        try {
          for (const user of users) {
            const review = rt.sandbox.setOutcome(user.capaUserId!, 'REVIEW_NEEDED');
            const rejected = rt.sandbox.setOutcome(user.capaUserId!, 'REJECTED');
            expect(review.events).toEqual(['CREATED_KYC', 'REVIEW_NEEDED_KYC']);
            expect(rejected.events).toEqual(['REJECTED_KYC']);
            customers.push({
              user,
              email: user.email,
              notifications: {
                created: review.notificationIds[0]!,
                review: review.notificationIds[1]!,
                rejected: rejected.notificationIds[0]!,
              },
            });
          }
          await rt.sandbox.flushDeliveries();
        } finally {
          rt.sandbox.setDelivery({ dropRate: 0 });
        }
        // Capa's retry of the rejection arrives first.
        for (const c of customers)
          expect(await rt.capa.retryWebhookNotification(c.notifications.rejected)).toMatchObject({ status: 'PENDING' });
        await settled();
        await sweepUntilQuiet();

        for (const c of customers) {
          const fresh = (await activeLink(rt.db, c.user.id))!;
          expect((await findUserByExternalId(rt.db, c.user.externalUserId))?.kycState).toBe('LINK_ISSUED');
          expect(retryMails(c)).toHaveLength(1);
          expect(retryMails(c)[0]!.text).toContain(fresh.url);
          expect(mails(c)).toHaveLength(2);
          expect(capaLinks(c)).toHaveLength(2);
          expect(await programmesForUser(rt.db, c.user.id)).toHaveLength(1);
        }
      },
    );

    it(
      "the first attempt's CREATED_KYC and REVIEW_NEEDED_KYC retried after the re-invitation move nobody",
      { timeout: 60_000 },
      async () => {
        expect(customers).toHaveLength(N);
        const before = new Map<string, number>();
        for (const c of customers) before.set(c.user.id, Math.max(0, ...(await inboxOf(c)).map((d) => d.id)));
        for (const c of customers) {
          await rt.capa.retryWebhookNotification(c.notifications.created);
          await rt.capa.retryWebhookNotification(c.notifications.review);
        }
        await settled();

        for (const c of customers) {
          expect((await stateHistory(rt.db, c.user.id)).map((h) => h.toState)).toEqual(['LINK_ISSUED', 'REJECTED', 'LINK_ISSUED']);
          const late = (await inboxOf(c)).filter((d) => d.id > before.get(c.user.id)!);
          expect(late.map((d) => d.eventName)).toEqual(['CREATED_KYC', 'REVIEW_NEEDED_KYC']);
          for (const d of late) {
            // New events for the inbox (the journey moved on since the originals), each checked with
            // Capa, whose latest verification predates the new link: recorded as an earlier link's.
            expect(d).toMatchObject<Partial<WebhookDelivery>>({
              status: 'processed',
              duplicateOf: null,
              stateFrom: 'LINK_ISSUED',
              stateTo: 'LINK_ISSUED',
              effect: 'earlier_link',
            });
          }
        }
      },
    );

    it('the next polls still return the old rejected verification: no second programme, e-mail or link', { timeout: 60_000 }, async () => {
      expect(customers).toHaveLength(N);
      // The stale-status refresh, then an operator's "Fetch KYC details now".
      await refreshCycle();
      const answers = [];
      for (const c of customers)
        answers.push(
          await rt.queues.addAndWait(fetchDetails, { userId: c.user.id, cause: 'operator:test', requestId: randomUUID() }, 20_000),
        );
      await sweepUntilQuiet();

      for (const [i, c] of customers.entries()) {
        const hist = await stateHistory(rt.db, c.user.id);
        // Never moved by the stale events: imported with a link, rejected, re-invited. Nothing since.
        expect(hist.map((h) => `${h.fromState}→${h.toState}`)).toEqual([
          'NOT_STARTED→LINK_ISSUED',
          'LINK_ISSUED→REJECTED',
          'REJECTED→LINK_ISSUED',
        ]);
        const [programme, ...others] = await programmesForUser(rt.db, c.user.id);
        expect(others).toEqual([]);
        expect(programme).toMatchObject({ status: 'active', resubmittedAt: null });
        expect(retryMails(c)).toHaveLength(1);
        expect(mails(c)).toHaveLength(2);
        expect(capaLinks(c)).toHaveLength(2);
        expect(await linksForUser(rt.db, c.user.id)).toHaveLength(2);
        expect((await notificationsForUser(rt.db, c.user.id)).map((m) => m.kind).sort()).toEqual(['kyc_link', 'kyc_retry']);
        // What the operator is told: Capa says REJECTED (the earlier attempt); the state stays.
        const a = answers[i]!;
        expect(a.state).toBe('completed');
        expect(a.state === 'completed' ? a.result : null).toMatchObject({
          state: 'LINK_ISSUED',
          changed: false,
          verificationResult: 'REJECTED',
          beforeReinvitation: true,
        });
      }
    });

    it(
      'the new link still works: a pass is applied, a genuine second rejection is followed up, another stale rejection is not',
      { timeout: 60_000 },
      async () => {
        expect(customers).toHaveLength(N);
        const [passes, failsAgain, idle] = customers as [Customer, Customer, Customer];
        for (const [c, outcome] of [
          [passes, 'VERIFIED'],
          [failsAgain, 'REJECTED'],
        ] as const) {
          const live = (await activeLink(rt.db, c.user.id))!;
          const res = await fetch(live.url, { method: 'POST', body: new URLSearchParams({ outcome }), redirect: 'manual' });
          expect([200, 303]).toContain(res.status);
        }
        // And Capa delivers the first attempt's rejection to the idle customer once more.
        rt.sandbox.emitEvent({ type: 'KYC', event: 'REJECTED_KYC', externalUserId: idle.user.externalUserId });
        await settled();
        await sweepUntilQuiet();

        expect((await findUserByExternalId(rt.db, passes.user.externalUserId))?.kycState).toBe('VERIFIED');
        expect((await programmesForUser(rt.db, passes.user.id))[0]).toMatchObject({ status: 'stopped', stopReason: 'customer verified' });
        expect(mails(passes)).toHaveLength(2);

        // A rejection of the new attempt is new: its own programme, e-mail and (third) link.
        const programmes = await programmesForUser(rt.db, failsAgain.user.id);
        expect(programmes).toHaveLength(2);
        expect(retryMails(failsAgain)).toHaveLength(2);
        expect(capaLinks(failsAgain)).toHaveLength(3);
        expect(retryMails(failsAgain)[1]!.text).toContain((await activeLink(rt.db, failsAgain.user.id))!.url);
        expect((await findUserByExternalId(rt.db, failsAgain.user.externalUserId))?.kycState).toBe('LINK_ISSUED');

        expect((await findUserByExternalId(rt.db, idle.user.externalUserId))?.kycState).toBe('LINK_ISSUED');
        expect((await inboxOf(idle)).at(-1)).toMatchObject({ eventName: 'REJECTED_KYC', status: 'processed', effect: 'earlier_link' });
        expect(await programmesForUser(rt.db, idle.user.id)).toHaveLength(1);
        expect(mails(idle)).toHaveLength(2);
        expect(capaLinks(idle)).toHaveLength(2);
      },
    );
  });
