import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { conversion, getMessage, notificationsForUser, programmesForUser } from '../../db/repositories/notifications.js';
import { activeLink } from '../../db/repositories/links.js';
import { applySignal, findUserById, insertUser } from '../../db/repositories/users.js';
import type { KycLink, User } from '../../db/schema.js';
import {
  cadenceFrom,
  followupDueAt,
  runNotificationSweep,
  stopProgrammesForUser,
  type NotifyDeps,
} from '../../jobs/notifications/programme.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';
import { generateLink } from '../../jobs/definitions/generate-link.js';
import { fetchDetails } from '../../jobs/definitions/fetch-details.js';
import { logger } from '../../lib/logger.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

let rt: TestRuntime;
let smtp: TestSmtp;
let deps: NotifyDeps;
const DAY = 86_400_000;

async function linkedCustomer(email: string): Promise<{ user: User; link: KycLink }> {
  const user = await insertUser(rt.db, { email, type: 'INDIVIDUAL', country: 'MX' });
  await rt.queues.add(createCapaUser, { userId: user.id, sendLink: { country: 'MX', requestId: randomUUID() } });
  const link = await waitFor(
    async () => ((await findUserById(rt.db, user.id))?.kycState === 'LINK_ISSUED' ? activeLink(rt.db, user.id) : null),
    { what: 'first link' },
  );
  return { user: (await findUserById(rt.db, user.id))!, link };
}

/** The customer submits on the hosted page (the sandbox emits the real webhooks). */
async function submit(url: string, outcome: 'VERIFIED' | 'REJECTED' | 'REVIEW_NEEDED') {
  const res = await fetch(url, { method: 'POST', body: new URLSearchParams({ outcome }), redirect: 'manual' });
  expect([200, 303]).toContain(res.status);
}

async function rejectAndReinvite(email: string) {
  const { user, link } = await linkedCustomer(email);
  await submit(link.url, 'REJECTED');
  const retry = await waitFor(
    async () => {
      // The scheduled sweep is off in tests: run it (it requests the retry link once Capa confirmed the rejection).
      await runNotificationSweep(deps, new Date());
      const rows = await notificationsForUser(rt.db, user.id);
      return rows.find((r) => r.kind === 'kyc_retry' && r.status === 'sent');
    },
    { what: 'retry message sent', timeoutMs: 15_000 },
  );
  const [programme] = await programmesForUser(rt.db, user.id);
  return { user, firstLink: link, retry, programme: programme! };
}

describe('retry programme for rejected customers', () => {
  beforeAll(async () => {
    smtp = await startTestSmtp();
    rt = await createTestRuntime({
      worker: false,
      // 1, 3, 7 and 14 days configured, but at most 3 follow-ups.
      env: {
        SMTP_URL: smtp.url,
        NOTIFY_BACKOFF_MS: '40',
        NOTIFY_SEND_ATTEMPTS: '3',
        NOTIFY_FOLLOWUP_DAYS: '7,1,3,14',
        NOTIFY_MAX_FOLLOWUPS: '3',
      },
    });
    await rt.startWorkers({ schedules: false });
    deps = { db: rt.db, enqueue: rt.queues, env: rt.env, logger };
  });
  afterAll(async () => {
    await rt?.close();
    await smtp?.close();
  });

  it('the cadence: configured offsets sorted, capped at NOTIFY_MAX_FOLLOWUPS, measured from the start', () => {
    expect(cadenceFrom(rt.env)).toEqual([1, 3, 7]);
    const start = '2026-01-01T10:00:00.000Z';
    expect(followupDueAt(start, [1, 3, 7], 1)).toBe('2026-01-02T10:00:00.000Z');
    expect(followupDueAt(start, [1, 3, 7], 3)).toBe('2026-01-08T10:00:00.000Z');
    expect(followupDueAt(start, [1, 3, 7], 4)).toBeNull();
  });

  it('REJECTED → "not approved, try again" e-mail with a fresh link that works', async () => {
    const { user, firstLink, retry, programme } = await rejectAndReinvite('rejected.once@example.mx');
    const fresh = (await activeLink(rt.db, user.id))!;
    expect(fresh.id).not.toBe(firstLink.id);
    expect(retry).toMatchObject({ step: 0, programmeId: programme.id, linkId: fresh.id, linkUrl: fresh.url, locale: 'es' });
    expect((await findUserById(rt.db, user.id))?.kycState).toBe('LINK_ISSUED');
    // The re-invitation is recorded once Capa confirmed the rejection (no link raced the check).
    expect(
      (await rt.db.selectFrom('stateChanges').select('toState').where('userId', '=', user.id).orderBy('id').execute()).map(
        (r) => r.toState,
      ),
    ).toEqual(['LINK_ISSUED', 'IN_PROGRESS', 'REJECTED', 'LINK_ISSUED']);
    expect(programme).toMatchObject({ status: 'active', nextStep: 1 });
    expect((await programmesForUser(rt.db, user.id))[0]!.reinvitedAt).toBeTruthy();

    const [mail] = smtp.to('rejected.once@example.mx');
    expect(mail!.subject).toBe('Tu verificación no fue aprobada — así puedes intentarlo de nuevo');
    expect(mail!.text).toContain(fresh.url);
    expect(mail!.text).not.toContain(firstLink.url);
    expect(mail!.html).toContain(`href="${fresh.url}"`);
    expect(mail!.headers['x-kyc-desk-programme']).toBe(programme.id);
    // The old link is spent at the provider, the new one opens.
    expect((await fetch(firstLink.url)).status).toBe(409); // used for the rejected attempt
    expect((await fetch(fresh.url)).status).toBe(200);
  });

  it('follow-ups on the cadence with a fake clock: day 1, 3 and 7, then nothing', async () => {
    const { user, programme } = await rejectAndReinvite('cadence@example.mx');
    const t0 = Date.parse(programme.createdAt);
    const at = (days: number) => new Date(t0 + days * DAY + 60_000);
    const reminders = () => smtp.to('cadence@example.mx').filter((m) => m.subject.startsWith('Recordatorio'));

    const sweepAt = async (days: number) => {
      await runNotificationSweep(deps, at(days));
      return (await notificationsForUser(rt.db, user.id)).filter((r) => r.kind === 'kyc_retry_reminder').length;
    };
    expect(await sweepAt(0.5)).toBe(0);
    expect(await sweepAt(1)).toBe(1);
    await waitFor(() => reminders().length === 1, { what: 'first reminder' });
    // Same day again (a second sweep, or a second worker): nothing new.
    expect(await sweepAt(1)).toBe(1);
    expect(await sweepAt(2)).toBe(1);
    expect(await sweepAt(3)).toBe(2);
    await waitFor(() => reminders().length === 2, { what: 'second reminder' });
    expect(await sweepAt(7)).toBe(3);
    await waitFor(() => reminders().length === 3, { what: 'third reminder' });
    expect(await sweepAt(14)).toBe(3);
    expect(await sweepAt(60)).toBe(3);

    const [p] = await programmesForUser(rt.db, user.id);
    expect(p).toMatchObject({ status: 'finished', nextDueAt: null });
    const rows = await notificationsForUser(rt.db, user.id);
    const steps = rows
      .filter((r) => r.programmeId === p!.id)
      .map((r) => `${r.kind}:${r.step}:${r.status}`)
      .sort();
    expect(steps).toEqual(['kyc_retry:0:sent', 'kyc_retry_reminder:1:sent', 'kyc_retry_reminder:2:sent', 'kyc_retry_reminder:3:sent']);
    // Reminders carry the live link (the one from the retry e-mail), not a dead one.
    const live = (await activeLink(rt.db, user.id))!;
    for (const m of reminders()) expect(m.text).toContain(live.url);
  });

  it('stops the moment the customer starts KYC: the queued follow-up is cancelled and never sent', async () => {
    const { user, programme } = await rejectAndReinvite('starts@example.mx');
    const t0 = Date.parse(programme.createdAt);
    await smtp.stop();
    let followupId: string;
    try {
      await runNotificationSweep(deps, new Date(t0 + DAY + 60_000));
      followupId = (await notificationsForUser(rt.db, user.id)).find((r) => r.step === 1)!.id;
      // The customer opens the retry link and submits: CREATED_KYC arrives (IN_PROGRESS), then the result.
      const live = (await activeLink(rt.db, user.id))!;
      rt.sandbox.setDelivery({ dropRate: 0 });
      await submit(live.url, 'VERIFIED');
      await waitFor(async () => (await findUserById(rt.db, user.id))?.kycState === 'VERIFIED', { what: 'verified' });
    } finally {
      await smtp.start();
    }
    const cancelled = await waitFor(
      async () => {
        const r = await getMessage(rt.db, followupId);
        return r?.status === 'cancelled' ? r : null;
      },
      { what: 'follow-up cancelled' },
    );
    expect(cancelled.failureReason).toMatch(/customer (started KYC|verified)/);
    const [p] = await programmesForUser(rt.db, user.id);
    expect(p!.status).toBe('stopped');
    expect(p!.stopReason).toMatch(/customer (started KYC|verified)/);
    expect(p!.resubmittedAt).toBeTruthy();
    expect(p!.verifiedAt).toBeTruthy();
    await runNotificationSweep(deps, new Date(t0 + 8 * DAY));
    expect((await notificationsForUser(rt.db, user.id)).filter((r) => r.kind === 'kyc_retry_reminder')).toHaveLength(1);
    expect(smtp.to('starts@example.mx').filter((m) => m.subject.startsWith('Recordatorio'))).toHaveLength(0);
  });

  it('an operator stop ends the programme: no more follow-ups', async () => {
    const { user, programme } = await rejectAndReinvite('op.stop@example.mx');
    expect(await stopProgrammesForUser(deps, user.id, 'operator', 'op-1')).toBe(1);
    await runNotificationSweep(deps, new Date(Date.parse(programme.createdAt) + 2 * DAY));
    expect((await notificationsForUser(rt.db, user.id)).filter((r) => r.kind === 'kyc_retry_reminder')).toHaveLength(0);
    const [p] = await programmesForUser(rt.db, user.id);
    expect(p).toMatchObject({ status: 'stopped', stopReason: 'operator', stoppedBy: 'op-1' });
  });

  it('rejected again after a retry: the old programme ends and a new one starts with a new link', async () => {
    const { user, programme } = await rejectAndReinvite('twice.rejected@example.mx');
    const live = (await activeLink(rt.db, user.id))!;
    // A poll right after the re-invitation still sees the old rejection: an echo, not a new one.
    const echoJob = await rt.queues.add(fetchDetails, { userId: user.id, cause: 'test', requestId: `echo-${randomUUID()}` });
    // Wait for this very poll (an earlier fetch for the same customer must not satisfy the wait).
    await waitFor(
      () => rt.db.selectFrom('jobRuns').select('id').where('jobId', '=', echoJob).where('status', '=', 'completed').executeTakeFirst(),
      { what: 'echo poll' },
    );
    await runNotificationSweep(deps, new Date());
    expect(await programmesForUser(rt.db, user.id)).toHaveLength(1);
    await submit(live.url, 'REJECTED');
    // The second attempt's webhooks and a poll race each other; either settles the rejection.
    await rt.queues.add(fetchDetails, { userId: user.id, cause: 'test', requestId: `after-${randomUUID()}` });
    const second = await waitFor(
      async () => {
        await runNotificationSweep(deps, new Date());
        const ps = await programmesForUser(rt.db, user.id);
        return ps.length === 2 && ps.find((p) => p.id !== programme.id)?.reinvitedAt ? ps : null;
      },
      { what: 'second programme re-invited', timeoutMs: 30_000 },
    );
    const old = second.find((p) => p.id === programme.id)!;
    expect(old.status).toBe('stopped');
    expect(old.resubmittedAt).toBeTruthy();
    expect(old.verifiedAt).toBeNull();
    expect(smtp.to('twice.rejected@example.mx').filter((m) => m.subject.startsWith('Tu verificación no fue aprobada'))).toHaveLength(2);
  });

  it('a rejection whose hook never ran is picked up by the sweep (database is the truth)', async () => {
    const user = await insertUser(rt.db, { email: 'missed.hook@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    await rt.queues.add(createCapaUser, { userId: user.id });
    await waitFor(async () => (await findUserById(rt.db, user.id))?.capaUserId, { what: 'in Capa' });
    // Moved to REJECTED without any job (as if the worker died right after committing).
    await rt.db.transaction().execute(async (trx) => {
      await applySignal(trx, user.id, { kind: 'LINK_ISSUED' }, { type: 'system' });
      await applySignal(trx, user.id, { kind: 'WEBHOOK', event: 'REJECTED_KYC' }, { type: 'system' });
    });
    // …and the details check that follows a rejection confirmed it.
    await rt.db
      .updateTable('users')
      .set({ capaConfirmedAt: new Date(Date.now() + 1000).toISOString() })
      .where('id', '=', user.id)
      .execute();
    await runNotificationSweep(deps, new Date());
    expect(await programmesForUser(rt.db, user.id)).toHaveLength(1);
    await waitFor(
      async () => {
        await runNotificationSweep(deps, new Date());
        return (await notificationsForUser(rt.db, user.id)).find((r) => r.kind === 'kyc_retry' && r.status === 'sent');
      },
      { what: 'retry sent', timeoutMs: 15_000 },
    );
    await runNotificationSweep(deps, new Date());
    expect(await programmesForUser(rt.db, user.id)).toHaveLength(1);
  });

  it('a programme whose link cannot be generated records the failure and stops', async () => {
    const user = await insertUser(rt.db, { email: 'no.capa@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    // Never created in Capa: generate-link cannot succeed.
    await rt.db.updateTable('users').set({ capaSync: 'failed', capaSyncError: 'refused by Capa' }).where('id', '=', user.id).execute();
    await rt.db.transaction().execute(async (trx) => {
      await applySignal(trx, user.id, { kind: 'LINK_ISSUED' }, { type: 'system' });
      await applySignal(trx, user.id, { kind: 'WEBHOOK', event: 'REJECTED_KYC' }, { type: 'system' });
    });
    await runNotificationSweep(deps, new Date());
    const row = (await notificationsForUser(rt.db, user.id))[0]!;
    expect(row).toMatchObject({ status: 'queued', linkUrl: null });
    // generate-link fails for good; the sweep a day later gives up with a reason.
    await runNotificationSweep(deps, new Date(Date.now() + 2 * DAY));
    const failed = (await getMessage(rt.db, row.id))!;
    expect(failed.status).toBe('failed');
    expect(failed.failureReason).toMatch(/no KYC link/);
  });

  it('conversion: rejected → re-invited → resubmitted → verified', async () => {
    const c = await conversion(rt.db);
    expect(c.rejected).toBeGreaterThanOrEqual(7);
    expect(c.reinvited).toBeGreaterThanOrEqual(6);
    expect(c.resubmitted).toBeGreaterThanOrEqual(2);
    expect(c.verified).toBe(1);
    expect(c.rejected).toBeGreaterThanOrEqual(c.reinvited);
    expect(c.reinvited).toBeGreaterThanOrEqual(c.resubmitted);
    expect(c.resubmitted).toBeGreaterThanOrEqual(c.verified);
  });

  it('an operator-requested link with notify reaches the customer (kyc_link) even after a rejection programme', async () => {
    const { user } = await rejectAndReinvite('manual.link@example.mx');
    await rt.queues.add(generateLink, { userId: user.id, country: 'MX', requestId: randomUUID(), notify: true, requestedBy: null });
    const row = await waitFor(
      async () => (await notificationsForUser(rt.db, user.id)).find((r) => r.kind === 'kyc_link' && r.status === 'sent'),
      { what: 'link e-mail' },
    );
    expect(row.linkId).toBe((await activeLink(rt.db, user.id))!.id);
  });
});
