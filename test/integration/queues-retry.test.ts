import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedIn } from '../../app/auth.server.js';
import { queueAction, queuesData } from '../../app/queues.server.js';
import { insertMessage } from '../../db/repositories/notifications.js';
import { insertUser } from '../../db/repositories/users.js';
import { redisConnection } from '../../lib/redis.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { signedInOperator } from './ops-support.js';
import { getFixedT } from '../../app/i18n.js';

/** A facade's message as a reader of each language sees it. */
const en = getFixedT('en');
const es = getFixedT('es');
const words = (m: { code: string; values?: Record<string, string | number> }, t = en) => t(m.code, m.values ?? {});

/**
 * /queues "retry" against real BullMQ on Redis: failed jobs made by a real worker that refuses
 * them, then retried one at a time and by kind, with the audit trail.
 */
let rt: TestRuntime;
let admin: SignedIn;
const req = () => new Request('http://127.0.0.1/queues', { method: 'POST' });
const form = (f: Record<string, string>) => {
  const fd = new FormData();
  for (const [k, v] of Object.entries(f)) fd.set(k, v);
  return fd;
};

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  const o = await signedInOperator(rt.db, 'admin');
  admin = { operator: { id: o.id, email: o.email, name: o.email, role: 'admin' }, session: { csrfToken: o.csrf } };
  const capa = rt.queues.queue('capa');
  for (let i = 0; i < 5; i++) await capa.add('fetch-details', { userId: `u-${i}` }, { jobId: `fd-${i}`, attempts: 3 });
  for (let i = 0; i < 3; i++) await capa.add('generate-link', { userId: `g-${i}` }, { jobId: `gl-${i}`, attempts: 3 });
  // A real worker that fails every job for good, so all eight end in the failed set.
  const connection = redisConnection(rt.env.REDIS_URL, 'worker');
  const refuser = new Worker(
    'capa',
    async () => {
      throw new UnrecoverableError('Capa refused (test)');
    },
    { connection, prefix: rt.env.QUEUE_PREFIX, concurrency: 4 },
  );
  await waitFor(async () => ((await capa.getFailedCount()) === 8 ? true : null), { what: 'eight failed jobs' });
  await refuser.close();
  connection.disconnect();
}, 60_000);

async function failedMessageJob() {
  const u = await insertUser(rt.db, { email: 'queued.message@example.mx', type: 'INDIVIDUAL', country: 'MX' });
  const { row } = await insertMessage(rt.db, {
    userId: u.id,
    kind: 'kyc_link',
    channel: 'email',
    locale: 'es',
    address: u.email,
    dedupeKey: `queues-${u.id}`,
  });
  const notifications = rt.queues.queue('notifications');
  await notifications.add('send-notification', { notificationId: row.id }, { jobId: `notify-${row.id}`, attempts: 1 });
  const connection = redisConnection(rt.env.REDIS_URL, 'worker');
  const refuser = new Worker(
    'notifications',
    async () => {
      throw new UnrecoverableError('SMTP refused (test)');
    },
    { connection, prefix: rt.env.QUEUE_PREFIX },
  );
  await waitFor(async () => ((await notifications.getFailedCount()) === 1 ? true : null), { what: 'a failed message job' });
  await refuser.close();
  connection.disconnect();
  return { user: u, jobId: `notify-${row.id}` };
}

afterAll(async () => {
  await rt?.close();
});

describe('/queues retry', () => {
  it('lists failed jobs per kind in plain words', async () => {
    const data = await queuesData(admin);
    const kinds = Object.fromEntries(data.failedKinds.filter((k) => k.queue === 'capa').map((k) => [k.name, k.count]));
    expect(kinds).toEqual({ 'fetch-details': 5, 'generate-link': 3 });
    expect(data.canRetry).toBe(true);
  });

  it('"retry all" of one kind requeues exactly that kind with fresh attempts, and is audited', async () => {
    const r = await queueAction(req(), admin, form({ intent: 'retry-kind', queue: 'capa', name: 'fetch-details' }));
    expect(r).toMatchObject({ tone: 'ok', code: 'queues:retry.kind_retried', values: { count: 5, name: 'fetch-details' } });
    expect(words(r)).toBe('5 failed fetch-details jobs queued again.');
    expect(words(r, es)).toBe('5 trabajos fetch-details fallidos volvieron a la cola.');
    const capa = rt.queues.queue('capa');
    const failed = (await capa.getJobs(['failed'])).map((j) => j.name).sort();
    expect(failed).toEqual(['generate-link', 'generate-link', 'generate-link']);
    const waiting = await capa.getJobs(['waiting', 'prioritized', 'delayed']);
    expect(waiting.map((j) => j.id).sort()).toEqual(['fd-0', 'fd-1', 'fd-2', 'fd-3', 'fd-4']);
    expect(waiting.every((j) => j.attemptsMade === 0)).toBe(true);
    const audit = await rt.db.selectFrom('auditLog').selectAll().where('action', '=', 'queues.retry-all').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ targetId: 'capa', outcome: 'queued', actor: admin.operator.email });
    expect(JSON.parse(audit[0]!.detail!)).toMatchObject({ name: 'fetch-details', moved: 5 });
    // Nothing left of that kind: said plainly, nothing moved.
    expect(await queueAction(req(), admin, form({ intent: 'retry-kind', queue: 'capa', name: 'fetch-details' }))).toMatchObject({
      tone: 'info',
    });
  });

  it('retries one job; a job that is not failed or does not exist is refused in plain words', async () => {
    expect(await queueAction(req(), admin, form({ intent: 'retry-one', queue: 'capa', jobId: 'gl-1' }))).toMatchObject({ tone: 'ok' });
    expect(await rt.queues.queue('capa').getJobState('gl-1')).not.toBe('failed');
    const notFailed = await queueAction(req(), admin, form({ intent: 'retry-one', queue: 'capa', jobId: 'gl-1' }));
    expect(notFailed).toMatchObject({ tone: 'info', code: 'queues:retry.job_not_failed', values: { jobId: 'gl-1' } });
    expect(words(notFailed)).toMatch(/is not failed any more \(it is (waiting|prioritized|active|delayed|completed)\)/);
    const gone = await queueAction(req(), admin, form({ intent: 'retry-one', queue: 'capa', jobId: 'nope-1' }));
    expect(gone).toMatchObject({ tone: 'error', code: 'queues:retry.job_gone' });
    expect(words(gone)).toMatch(/no longer exists/);
    expect((await queueAction(req(), admin, form({ intent: 'retry-one', queue: 'no-such-queue', jobId: 'gl-2' }))).tone).toBe('error');
    expect((await rt.queues.queue('capa').getJobs(['failed'])).map((j) => j.id).sort()).toEqual(['gl-0', 'gl-2']);
  });

  it('a failed message job names its customer (resolved through the message)', async () => {
    const { user, jobId } = await failedMessageJob();
    const row = (await queuesData(admin)).failed.find((j) => j.id === jobId);
    expect(row).toMatchObject({ queue: 'notifications', name: 'send-notification', userId: user.id, externalUserId: user.externalUserId });
  });
});
