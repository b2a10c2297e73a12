import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loader as retentionLoader } from '../../app/routes/audit.retention';
import { loader as erasureLoader } from '../../app/routes/users.$id_.erasure';
import { verifyAuditChain } from '../../db/repositories/audit.js';
import { insertNote } from '../../db/repositories/cases.js';
import { countHeldForRetention, dueForRetention, setLegalHold } from '../../db/repositories/erasure.js';
import { insertLink } from '../../db/repositories/links.js';
import { applySignal, findUserById, insertUser } from '../../db/repositories/users.js';
import type { KycState } from '../../db/schema.js';
import { retentionCutoff, retentionPolicy } from '../../domain/retention.js';
import { retentionJob } from '../../jobs/definitions/retention.js';
import { eraseCustomer } from '../../jobs/erasure.js';
import { applyRetention } from '../../jobs/retention.js';
import { ConfigError, parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { readMessages } from '../../lib/stored-message.js';
import { createTestRuntime, postgresAvailable, waitFor, type TestRuntime } from '../support/runtime.js';
import { call, get, signInAs, type Browser } from './console-helpers.js';

/**
 * The retention policy as the worker applies it: the scheduled job, run through Redis by a real
 * worker, erases exactly the customers past the years their state keeps them — not those inside
 * it, not those on legal hold, not states kept for ever — through the admin's erasure path, with
 * an audit entry each and a recorded run /audit/retention shows; a second run erases nothing more.
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

const YEAR_MS = 365.25 * 86_400_000;
const yearsAgo = (y: number) => new Date(Date.now() - y * YEAR_MS).toISOString();

for (const kind of kinds) {
  describe(`retention on ${kind}`, () => {
    let rt: TestRuntime;
    let admin: Browser;
    let compliance: Browser;
    let viewer: Browser;
    const ids: Record<string, string> = {};

    /** A customer with personal data in a note, in `state` since `years` ago. */
    async function customer(name: string, state: KycState, years: number) {
      const u = await insertUser(rt.db, { email: `${name}@retention.mx`, alias: `Alias ${name}`, type: 'INDIVIDUAL', country: 'MX' });
      if (state === 'LINK_ISSUED') {
        // Through the state machine, so the customer has a state history the tombstone keeps.
        await rt.db.transaction().execute(async (trx) => {
          await insertLink(trx, { userId: u.id, url: `https://kyc.example/${name}`, country: 'MX', redirectUri: null, createdBy: null });
          await applySignal(trx, u.id, { kind: 'LINK_ISSUED' }, { type: 'job', id: 'test', reason: 'link generated' });
        });
      }
      await rt.db
        .updateTable('users')
        .set({ kycState: state, kycStateChangedAt: yearsAgo(years) })
        .where('id', '=', u.id)
        .execute();
      await insertNote(rt.db, u.id, { id: null, label: 'analyst@desk.test' }, `called ${name}`);
      ids[name] = u.id;
      return u.id;
    }

    const runs = () => rt.db.selectFrom('retentionRuns').selectAll().orderBy('startedAt', 'asc').execute();
    async function runJob(): Promise<void> {
      const before = (await runs()).length;
      await rt.queues.add(retentionJob, {});
      await waitFor(async () => (await runs()).filter((r) => r.finishedAt).length === before + 1, { what: 'a retention run' });
      await waitFor(
        async () =>
          (await rt.db.selectFrom('jobRuns').select('id').where('jobName', '=', 'retention').where('status', '=', 'completed').execute())
            .length ===
          before + 1,
        { what: 'the retention job completed' },
      );
    }
    const retentionAudits = () =>
      rt.db.selectFrom('auditLog').selectAll().where('action', '=', 'evidence.retention').orderBy('id', 'asc').execute();

    beforeAll(async () => {
      rt = await createTestRuntime({
        dbKind: kind,
        worker: false,
        env: { RETENTION_REJECTED_YEARS: '5', RETENTION_LINK_ISSUED_YEARS: '1', RETENTION_NOT_STARTED_YEARS: '1' },
      });
      await rt.startWorkers({ queues: ['maintenance'], schedules: false });
      admin = await signInAs(rt.db, 'admin');
      compliance = await signInAs(rt.db, 'compliance');
      viewer = await signInAs(rt.db, 'viewer');
      await customer('rejected-old', 'REJECTED', 6);
      await customer('rejected-recent', 'REJECTED', 4);
      await customer('rejected-held', 'REJECTED', 7);
      await setLegalHold(rt.db, ids['rejected-held']!, true, 'UIF inquiry');
      await customer('link-old', 'LINK_ISSUED', 2);
      await customer('link-recent', 'LINK_ISSUED', 0.5);
      await customer('verified-old', 'VERIFIED', 30);
      await customer('in-progress-old', 'IN_PROGRESS', 20);
      await customer('review-old', 'REVIEW_NEEDED', 20);
    }, 60_000);
    afterAll(async () => {
      await rt?.close();
    });

    const erased = async (name: string) => Boolean((await findUserById(rt.db, ids[name]!))?.erasedAt);

    it('the scan hands out only customers past the cut-off and not on hold, a page at a time', async () => {
      const cutoff = retentionCutoff(5, Date.now());
      const due = await dueForRetention(rt.db, 'REJECTED', cutoff, 10);
      expect(due.map((d) => d.id)).toEqual([ids['rejected-old']]);
      expect(await countHeldForRetention(rt.db, 'REJECTED', cutoff)).toBe(1);
      // Oldest first; the cursor moves past what was handed out.
      const all = await dueForRetention(rt.db, 'REJECTED', new Date().toISOString(), 10);
      expect(all.map((d) => d.id)).toEqual([ids['rejected-old'], ids['rejected-recent']]);
      const first = await dueForRetention(rt.db, 'REJECTED', new Date().toISOString(), 1);
      expect(await dueForRetention(rt.db, 'REJECTED', new Date().toISOString(), 1, first[0])).toEqual([all[1]]);
      expect(await dueForRetention(rt.db, 'REJECTED', new Date().toISOString(), 1, all[1])).toEqual([]);
    });

    it('erases only customers past the policy for their state, each audited, and records the run', { timeout: 60_000 }, async () => {
      const linkHistory = await rt.db.selectFrom('stateChanges').select('id').where('userId', '=', ids['link-old']!).execute();
      expect(linkHistory.length).toBeGreaterThan(0);

      await runJob();

      expect(await erased('rejected-old')).toBe(true);
      expect(await erased('link-old')).toBe(true);
      for (const kept of ['rejected-recent', 'rejected-held', 'link-recent', 'verified-old', 'in-progress-old', 'review-old']) {
        expect(await erased(kept), kept).toBe(false);
      }
      // The tombstone: state and history stay, the personal data goes.
      const tomb = await findUserById(rt.db, ids['rejected-old']!);
      expect(tomb).toMatchObject({ kycState: 'REJECTED', alias: null, email: `erased-${ids['rejected-old']}@erased.invalid` });
      expect((await rt.db.selectFrom('caseNotes').select('body').where('userId', '=', ids['rejected-old']!).execute())[0]?.body).toBe('');
      expect(await rt.db.selectFrom('stateChanges').select('id').where('userId', '=', ids['link-old']!).execute()).toHaveLength(
        linkHistory.length,
      );
      expect((await rt.db.selectFrom('kycLinks').select('url').where('userId', '=', ids['link-old']!).execute())[0]?.url).toBe('');
      const keptNote = await rt.db.selectFrom('caseNotes').select('body').where('userId', '=', ids['rejected-recent']!).execute();
      expect(keptNote[0]?.body).toBe('called rejected-recent');

      // The same erasure record an admin's leaves, its reason a catalogue code with the policy.
      const [run] = await runs();
      const rec = await rt.db.selectFrom('erasures').selectAll().where('userId', '=', ids['rejected-old']!).executeTakeFirstOrThrow();
      expect(rec).toMatchObject({ kind: 'retention', requestedBy: null, runId: run!.id });
      expect(readMessages(rec.reason)).toEqual([{ code: 'evidence:retention.reason', values: { state: 'REJECTED', count: 5 } }]);
      expect(JSON.parse(rec.report)).toMatchObject({ users: 1, case_notes: 1 });

      const audits = await retentionAudits();
      expect(audits.map((a) => a.targetId).sort()).toEqual([ids['rejected-old'], ids['link-old']].sort());
      for (const a of audits) {
        expect(a).toMatchObject({ actor: 'system', operatorId: null, outcome: 'ok', targetType: 'user' });
        expect(JSON.parse(a.detail!)).toMatchObject({ runId: run!.id });
        expect(a.detail).not.toContain('@retention.mx');
      }
      expect(await verifyAuditChain(rt.db)).toMatchObject({ ok: true });

      expect(JSON.parse(run!.erased)).toEqual({ REJECTED: 1, LINK_ISSUED: 1 });
      expect(JSON.parse(run!.held)).toEqual({ REJECTED: 1 });
      expect(run!.failed).toBe(0);
      expect(JSON.parse(run!.policy)).toMatchObject({ REJECTED: 5, LINK_ISSUED: 1, NOT_STARTED: 1, VERIFIED: 0, IN_PROGRESS: 0 });
    });

    it('a second run erases nothing more', { timeout: 60_000 }, async () => {
      const auditsBefore = (await retentionAudits()).length;
      const erasuresBefore = await rt.db.selectFrom('erasures').select('id').execute();
      await runJob();
      const second = (await runs())[1]!;
      expect(JSON.parse(second.erased)).toEqual({});
      expect(JSON.parse(second.held)).toEqual({ REJECTED: 1 });
      expect(await retentionAudits()).toHaveLength(auditsBefore);
      expect(await rt.db.selectFrom('erasures').select('id').execute()).toHaveLength(erasuresBefore.length);
    });

    it('the report shows each run: counts per state, customers erased, holds', async () => {
      expect((await call(retentionLoader, get('/audit/retention', viewer))).status).toBe(403);
      const page = await call(retentionLoader, get('/audit/retention', compliance));
      expect(page.status).toBe(200);
      expect(page.data.policy).toContainEqual({ state: 'REJECTED', years: 5 });
      expect(page.data.policy).toContainEqual({ state: 'VERIFIED', years: 0 });
      const [latest, first] = page.data.runs;
      expect(latest).toMatchObject({ erasedTotal: 0, heldTotal: 1, customers: [] });
      expect(first).toMatchObject({ erasedTotal: 2, erased: { REJECTED: 1, LINK_ISSUED: 1 }, held: { REJECTED: 1 }, failed: 0 });
      expect(first.customers.map((c: { userId: string }) => c.userId).sort()).toEqual([ids['rejected-old'], ids['link-old']].sort());
      // The customer's own erasure page words the reason from its code.
      const er = await call(erasureLoader, get(`/users/${ids['rejected-old']}/erasure`, admin), { id: ids['rejected-old']! });
      expect(er.data.erasures[0]).toMatchObject({
        kind: 'retention',
        reason: { code: 'evidence:retention.reason', values: { state: 'REJECTED', count: 5 } },
      });
    });

    it('a state change after the scan starts a new period; a released hold lets the next run erase', { timeout: 60_000 }, async () => {
      // The scan saw rejected-recent as due at some later cut-off; it resubmitted meanwhile.
      const cutoff = new Date(Date.now() + 1000).toISOString();
      await rt.db.updateTable('users').set({ kycState: 'IN_PROGRESS' }).where('id', '=', ids['rejected-recent']!).execute();
      const r = await eraseCustomer(
        rt.db,
        ids['rejected-recent']!,
        { kind: 'retention', reason: 'x', requestedBy: null },
        { due: { state: 'REJECTED', before: cutoff } },
      );
      expect(r.code).toBe('not_due');
      expect(await erased('rejected-recent')).toBe(false);

      await setLegalHold(rt.db, ids['rejected-held']!, false, null);
      await runJob();
      expect(await erased('rejected-held')).toBe(true);
      expect(JSON.parse((await runs())[2]!.erased)).toEqual({ REJECTED: 1 });
      expect(await verifyAuditChain(rt.db)).toMatchObject({ ok: true });
    });

    it('pages through many due customers; a policy of 0 erases none', { timeout: 60_000 }, async () => {
      for (let i = 0; i < 5; i++) await customer(`batch-${i}`, 'NOT_STARTED', 3);
      const none = await applyRetention(
        { db: rt.db, logger },
        retentionPolicy({ ...rt.env, RETENTION_NOT_STARTED_YEARS: 0, RETENTION_LINK_ISSUED_YEARS: 0, RETENTION_REJECTED_YEARS: 0 }),
        { jobId: null, pageSize: 2 },
      );
      expect(none.erased).toEqual({});
      for (let i = 0; i < 5; i++) expect(await erased(`batch-${i}`)).toBe(false);
      const all = await applyRetention({ db: rt.db, logger }, retentionPolicy(rt.env), { jobId: null, pageSize: 2 });
      expect(all.erased).toEqual({ NOT_STARTED: 5 });
      for (let i = 0; i < 5; i++) expect(await erased(`batch-${i}`)).toBe(true);
      expect(await erased('verified-old')).toBe(false);
    });
  });
}

describe('retention configuration', () => {
  const base: NodeJS.ProcessEnv = { NODE_ENV: 'test' };
  it('is kept for ever unless set; whole years only; customers at least ten years', () => {
    const env = parseEnv(base);
    expect(retentionPolicy(env)).toEqual({
      NOT_STARTED: 0,
      LINK_ISSUED: 0,
      IN_PROGRESS: 0,
      VERIFIED: 0,
      REJECTED: 0,
      REVIEW_NEEDED: 0,
    });
    expect(parseEnv({ ...base, RETENTION_REJECTED_YEARS: '', RETENTION_VERIFIED_YEARS: '10' }).RETENTION_VERIFIED_YEARS).toBe(10);
    expect(() => parseEnv({ ...base, RETENTION_VERIFIED_YEARS: '5' })).toThrow(/RETENTION_VERIFIED_YEARS: must be 0/);
    expect(() => parseEnv({ ...base, RETENTION_REJECTED_YEARS: '2.5' })).toThrow(ConfigError);
    expect(() => parseEnv({ ...base, RETENTION_LINK_ISSUED_YEARS: '-1' })).toThrow(/RETENTION_LINK_ISSUED_YEARS/);
  });
});
