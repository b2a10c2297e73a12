import { createReadStream } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cancelImport,
  commitImport,
  findImport,
  importProgress,
  pauseImport,
  resumeImport,
  retryFailedRows,
} from '../../db/repositories/imports.js';
import { drainImport, feedImport } from '../../jobs/imports/orchestration.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { insertUser } from '../../db/repositories/users.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';
import { createConsoleI18n } from '../../app/i18n';
import { readMessages } from '../../lib/stored-message.js';

const english = createConsoleI18n('en');
const spanish = createConsoleI18n('es');

const limits = { maxBytes: 20 * 1024 * 1024, maxRows: 100_000 };

export function bulkCsv(tag: string, n: number, opts: { linkEvery?: number } = {}): string {
  const lines = ['externalUserId,email,type,alias,country,sendLink'];
  for (let i = 1; i <= n; i++)
    lines.push(`${tag}-${i},${tag}.${i}@example.mx,INDIVIDUAL,,MX,${opts.linkEvery && i % opts.linkEvery === 0 ? 'yes' : 'no'}`);
  return `${lines.join('\n')}\n`;
}

async function* once(s: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(s);
}

async function stageAndCommit(rt: TestRuntime, source: AsyncIterable<Uint8Array>, name = 'bulk.csv') {
  const staged = await stageImport(rt.db, { source, fileName: name, createdBy: null, limits });
  expect(await commitImport(rt.db, staged.importId, null)).toBe(true);
  await feedImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
  return staged;
}

const statusOf = async (rt: TestRuntime, id: string) => (await findImport(rt.db, id))?.status;

describe('tracked imports against the sandbox (real Redis, SQLite, workers)', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ env: { IMPORT_OUTAGE_PROBE_SECONDS: '0' } });
    await insertUser(rt.db, { externalUserId: 'existing-0001', email: 'existing@example.mx', type: 'INDIVIDUAL' });
    await insertUser(rt.db, { externalUserId: 'other-0009', email: 'already@example.mx', type: 'INDIVIDUAL' });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('the file with every kind of bad row: only valid rows reach Capa; links only where asked; audited', async () => {
    const before = rt.sandbox.stats();
    const staged = await stageAndCommit(rt, createReadStream(path.resolve('test/fixtures/imports/every-bad-row.csv')), 'every-bad-row.csv');
    await waitFor(async () => (await statusOf(rt, staged.importId)) === 'completed', { timeoutMs: 20_000, what: 'import completed' });
    const rows = await rt.db
      .selectFrom('importRows')
      .selectAll()
      .where('importId', '=', staged.importId)
      .where('status', '<>', 'invalid')
      .orderBy('rowNo')
      .execute();
    expect(rows.map((r) => [r.rowNo, r.status])).toEqual([
      [1, 'done'],
      [2, 'done'],
      [3, 'done'],
      [16, 'done'],
    ]);
    for (const r of rows) {
      const u = await rt.db.selectFrom('users').selectAll().where('id', '=', r.userId!).executeTakeFirstOrThrow();
      expect(u.capaUserId).toBe(r.capaUserId);
      expect(u.externalUserId).toBe(r.externalUserId);
    }
    expect(rows.filter((r) => r.linkId).map((r) => r.rowNo)).toEqual([1, 3]);
    const after = rt.sandbox.stats();
    expect(after.createUserCalls.total - before.createUserCalls.total).toBe(4);
    expect(after.linksGenerated - before.linksGenerated).toBe(2);
    expect(after.createUserCalls.duplicates).toBe(0);
    const audit = await rt.db
      .selectFrom('auditLog')
      .select(['action'])
      .where('targetType', '=', 'import')
      .where('targetId', '=', staged.importId)
      .execute();
    expect(audit.map((a) => a.action)).toContain('import.completed');

    // Re-uploading the same file: every row already exists here; committing creates nothing new.
    const again = await stageAndCommit(rt, createReadStream(path.resolve('test/fixtures/imports/every-bad-row.csv')), 'every-bad-row.csv');
    expect(again.validRows).toBe(0);
    expect(again.sameFileAs?.id).toBe(staged.importId);
    expect(again.byReason.exists).toBeGreaterThanOrEqual(4);
    await waitFor(async () => (await statusOf(rt, again.importId)) === 'completed', { what: 'empty import completed' });
    expect(rt.sandbox.stats().createUserCalls.total).toBe(after.createUserCalls.total);
  });

  it('429s from Capa: the queue waits for Retry-After; every row ends done, no attempt burnt, no duplicate', async () => {
    rt.sandbox.setFaults({ rate429: 0.3, retryAfterSec: 0.05 });
    try {
      const before = rt.sandbox.stats();
      const staged = await stageAndCommit(rt, once(bulkCsv('r429', 60, { linkEvery: 3 })));
      await waitFor(async () => (await statusOf(rt, staged.importId)) === 'completed', {
        timeoutMs: 30_000,
        what: 'import completed under 429s',
      });
      const p = await importProgress(rt.db, staged.importId);
      expect(p).toMatchObject({ done: 60, failed: 0, remaining: 0 });
      const after = rt.sandbox.stats();
      expect(after.sent429 - before.sent429).toBeGreaterThan(0);
      expect(after.usersCreated - before.usersCreated).toBe(60);
      expect(after.createUserCalls.duplicates).toBe(0);
      expect(after.linksGenerated - before.linksGenerated).toBe(20);
    } finally {
      rt.sandbox.setFaults({});
    }
  });

  it('a Capa outage (every call 500) pauses the import with the reason instead of failing rows; resume finishes it', async () => {
    rt.sandbox.setFaults({ errorRate: 1 });
    const staged = await stageAndCommit(rt, once(bulkCsv('outage', 40)));
    const paused = await waitFor(
      async () => {
        const imp = await findImport(rt.db, staged.importId);
        return imp?.status === 'paused' ? imp : null;
      },
      { timeoutMs: 30_000, what: 'paused by outage' },
    );
    expect(paused.pauseKind).toBe('outage');
    // Stored as a code and values (the page words it in the reader's language and time zone).
    expect(readMessages(paused.statusReason)).toEqual([
      { code: 'imports:status_reasons.outage', values: { capaError: 'internal', failures: 5, at: expect.stringMatching(/^\d{4}-/) } },
    ]);
    const [outage] = readMessages(paused.statusReason)!;
    expect(english.t(outage!.code, outage!.values)).toMatch(/^Capa is not answering properly \(5 failures in a row; last: /);
    expect(spanish.t(outage!.code, outage!.values)).toMatch(/^Capa no responde bien \(5 fallas seguidas; la última: /);
    // Let in-flight rows settle, then: no row failed, nothing was created.
    await waitFor(async () => (await importProgress(rt.db, staged.importId)).counts.queued === 0, {
      timeoutMs: 20_000,
      what: 'in-flight rows released',
    });
    const p = await importProgress(rt.db, staged.importId);
    expect(p.failed).toBe(0);
    expect(p.done).toBe(0);
    const retrying = await rt.db
      .selectFrom('importRows')
      .select(['reason'])
      .where('importId', '=', staged.importId)
      .where('attempts', '>', 0)
      .execute();
    expect(retrying.length).toBeGreaterThan(0);
    expect(readMessages(retrying[0]!.reason)).toEqual([{ code: 'imports:row_reasons.will_retry', values: { capaError: 'internal' } }]);

    rt.sandbox.setFaults({});
    expect(await resumeImport(rt.db, staged.importId)).toBe(true);
    await feedImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
    await waitFor(async () => (await statusOf(rt, staged.importId)) === 'completed', { timeoutMs: 30_000, what: 'completed after resume' });
    expect(await importProgress(rt.db, staged.importId)).toMatchObject({ done: 40, failed: 0 });
    expect(rt.sandbox.stats().createUserCalls.duplicates).toBe(0);
  });

  it('operator pause holds the rows, resume continues, cancel stops what has not started', { timeout: 90_000 }, async () => {
    rt.sandbox.setFaults({ latencyMs: 100 });
    try {
      const staged = await stageAndCommit(rt, once(bulkCsv('pause', 1000)));
      await waitFor(async () => (await importProgress(rt.db, staged.importId)).done >= 20, { timeoutMs: 20_000, what: 'some rows done' });
      expect(await pauseImport(rt.db, staged.importId, 'operator', 'paused by test')).toBe(true);
      await drainImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
      await waitFor(async () => (await importProgress(rt.db, staged.importId)).counts.queued === 0, {
        timeoutMs: 20_000,
        what: 'queued rows released',
      });
      const held = await importProgress(rt.db, staged.importId);
      expect(held.remaining).toBeGreaterThan(0);
      // While paused nothing moves (the relay does not feed a paused import).
      await rt.workers!.queues.queue('maintenance').add('import-relay', {});
      await new Promise((r) => setTimeout(r, 300));
      expect((await importProgress(rt.db, staged.importId)).done).toBe(held.done);

      expect(await resumeImport(rt.db, staged.importId)).toBe(true);
      await feedImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
      await waitFor(async () => (await importProgress(rt.db, staged.importId)).done > held.done + 10, {
        timeoutMs: 20_000,
        what: 'progress after resume',
      });
      expect(await cancelImport(rt.db, staged.importId)).toBe(true);
      await drainImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
      await waitFor(async () => (await importProgress(rt.db, staged.importId)).remaining === 0, {
        timeoutMs: 20_000,
        what: 'in-flight rows settled after cancel',
      });
      const p = await importProgress(rt.db, staged.importId);
      expect(p.cancelled).toBeGreaterThan(0);
      expect(p.done + p.cancelled + p.failed).toBe(1000);
      expect(await statusOf(rt, staged.importId)).toBe('cancelled');
      // Every done row is a customer in Capa; no cancelled row reached Capa.
      const created = new Set(rt.sandbox.users().map((u) => u.externalUserId));
      const rows = await rt.db
        .selectFrom('importRows')
        .select(['externalUserId', 'status'])
        .where('importId', '=', staged.importId)
        .execute();
      for (const r of rows) expect(created.has(r.externalUserId!)).toBe(r.status === 'done');
    } finally {
      rt.sandbox.setFaults({});
    }
  });

  it('a row Capa refuses fails with Capa\'s reason; "retry failed rows" runs it again', async () => {
    // Capa already has this e-mail (made outside KYC Desk): our dry run cannot know, Capa refuses.
    await rt.capa.createUser({ type: 'INDIVIDUAL', email: 'outside@example.mx', externalUserId: 'outside-1' });
    const csv = 'externalUserId,email,country,sendLink\nretry-1,outside@example.mx,MX,no\nretry-2,retry2@example.mx,MX,no\n';
    const staged = await stageAndCommit(rt, once(csv));
    await waitFor(async () => (await statusOf(rt, staged.importId)) === 'completed', { what: 'completed with a failure' });
    const failed = await rt.db
      .selectFrom('importRows')
      .selectAll()
      .where('importId', '=', staged.importId)
      .where('status', '=', 'failed')
      .execute();
    expect(failed.map((r) => r.rowNo)).toEqual([1]);
    expect(failed[0]!.reason).toMatch(/e-?mail|exists|conflict/i);
    expect(await retryFailedRows(rt.db, staged.importId)).toBe(1);
    expect(await statusOf(rt, staged.importId)).toBe('running');
    await feedImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
    await waitFor(async () => (await statusOf(rt, staged.importId)) === 'completed', { what: 'completed again' });
    const row = await rt.db
      .selectFrom('importRows')
      .selectAll()
      .where('importId', '=', staged.importId)
      .where('rowNo', '=', 1)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('failed'); // Capa still refuses; the row says why, nothing duplicated
    expect(row.gen).toBeGreaterThan(1);
  });
});
