import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KycOutcome, SandboxUserTruth } from '../../capa/sandbox/server.js';
import { listDrift } from '../../db/repositories/drift.js';
import { getRun, runProgress } from '../../db/repositories/refresh.js';
import { insertUser, stateHistory } from '../../db/repositories/users.js';
import { FINAL_STATES, type KycState } from '../../db/schema.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { refreshScan } from '../../jobs/definitions/refresh-scan.js';
import { decide, mapVerificationResult } from '../../domain/state-machine.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

/**
 * Reconciliation end to end: real sandbox over HTTP (with delivery faults), real intake, real
 * Redis/BullMQ workers, real SQLite. Every refresh threshold is 0, so one cycle covers every
 * customer still in a state Capa can move.
 */

const ENV = {
  REFRESH_STALE_LINK_ISSUED_MINUTES: '0',
  REFRESH_STALE_IN_PROGRESS_MINUTES: '0',
  REFRESH_STALE_REVIEW_NEEDED_MINUTES: '0',
  REFRESH_MAX_PER_SCAN: '10000',
  CAPA_RATE_LIMIT_PER_SEC: '1000',
  WORKER_CONCURRENCY: '16',
};

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function onboardMany(rt: TestRuntime, n: number, tag: string) {
  const users = [];
  for (let i = 0; i < n; i++) users.push(await insertUser(rt.db, { email: `${tag}-${i}@example.mx`, type: 'INDIVIDUAL', country: 'MX' }));
  await Promise.all(
    users.map((u) =>
      rt.queues.add(createCapaUser, {
        userId: u.id,
        sendLink: { country: 'MX', redirectUri: 'https://partner.example/kyc/return', requestId: randomUUID() },
      }),
    ),
  );
  const ids = users.map((u) => u.id);
  await waitFor(
    async () => {
      const r = await rt.db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('id', 'in', ids)
        .where('kycState', '=', 'LINK_ISSUED')
        .where('capaUserId', 'is not', null)
        .executeTakeFirst();
      return Number(r?.n) === n;
    },
    { timeoutMs: 90_000, what: `${n} customers created with a link` },
  );
  return rt.db.selectFrom('users').selectAll().where('id', 'in', ids).execute();
}

/** Sandbox deliveries done, every queue empty, every stored delivery processed. */
async function quiet(rt: TestRuntime) {
  await rt.sandbox.flushDeliveries();
  await waitFor(
    async () => {
      for (const q of ['webhooks', 'capa', 'notifications'] as const) {
        // Notification follow-ups wait days (delayed); only work due now counts.
        const queue = rt.queues.queue(q as Parameters<TestRuntime['queues']['queue']>[0]);
        const c =
          q === 'notifications'
            ? await queue.getJobCounts('waiting', 'active', 'prioritized')
            : await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused');
        if (Object.values(c).some((n) => n > 0)) return false;
      }
      return !(await rt.db.selectFrom('webhookInbox').select('id').where('status', '=', 'received').executeTakeFirst());
    },
    { timeoutMs: 90_000, intervalMs: 100, what: 'queues drained' },
  );
}

/** One refresh cycle: the scan job, then every customer it asked about answered. */
async function refreshCycle(rt: TestRuntime) {
  const before = await rt.db
    .selectFrom('refreshRuns')
    .select((eb) => eb.fn.max('id').as('m'))
    .executeTakeFirst();
  await rt.queues.add(refreshScan, {});
  const run = await waitFor(
    async () => {
      const r = await rt.db
        .selectFrom('refreshRuns')
        .selectAll()
        .where('id', '>', Number(before?.m ?? 0))
        .where('kind', '=', 'scheduled')
        .executeTakeFirst();
      return r?.status === 'done' ? r : null;
    },
    { timeoutMs: 120_000, intervalMs: 100, what: 'refresh cycle done' },
  );
  return run;
}

/**
 * Our state for Capa's truth. PENDING is our IN_PROGRESS. A customer whose newest link at Capa is
 * still open after a used one was re-invited (the notifications feature sends a new link after a
 * rejection): LINK_ISSUED, whatever the previous attempt's outcome.
 */
function expectedState(t: SandboxUserTruth): KycState {
  const newest = t.links.at(-1);
  if (newest?.state === 'open' && t.links.some((l) => l.state === 'used')) return 'LINK_ISSUED';
  return t.kycState === 'PENDING' ? 'IN_PROGRESS' : (t.kycState as KycState);
}
/** Final states the customer really reached at Capa (every used link's outcome). */
const reachedFinals = (t: SandboxUserTruth) =>
  new Set(t.links.map((l) => l.outcome).filter((o): o is KycOutcome => o !== null && o !== 'PENDING'));

describe('refresh reconciles 500 customers through dropped, duplicated and reordered webhooks', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false, env: ENV });
    await rt.startWorkers({ schedules: false });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('after one cycle every state equals Capa’s truth and no history shows a final state not reached', { timeout: 300_000 }, async () => {
    const users = await onboardMany(rt, 500, 'recon');
    const random = rng(20261125);
    const outcomes: Array<KycOutcome | null> = ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED', 'PENDING', null];
    rt.sandbox.setDelivery({ dropRate: 0.3, duplicateRate: 0.2, reorder: true });
    const chosen = new Map<string, KycOutcome | null>();
    for (const u of users) {
      const o = outcomes[Math.floor(random() * outcomes.length)]!;
      chosen.set(u.id, o);
      if (o) rt.sandbox.setOutcome(u.capaUserId!, o);
    }
    await quiet(rt);
    rt.sandbox.setDelivery({ dropRate: 0, duplicateRate: 0, reorder: false });
    const stats = rt.sandbox.stats();
    expect(stats.deliveriesDropped).toBeGreaterThan(50);
    expect(stats.deliveriesDuplicated).toBeGreaterThan(20);

    // Before the cycle the drops leave customers behind Capa.
    const truth = new Map(rt.sandbox.users().map((t) => [t.externalUserId, t]));
    const behind = (await rt.db.selectFrom('users').select(['externalUserId', 'kycState']).execute()).filter(
      (u) => expectedState(truth.get(u.externalUserId)!) !== u.kycState,
    );
    expect(behind.length).toBeGreaterThan(20);

    const run = await refreshCycle(rt);
    await quiet(rt);
    // Read again: rejected customers were re-invited meanwhile (a new link at Capa).
    for (const t of rt.sandbox.users()) truth.set(t.externalUserId, t);

    const ours = await rt.db.selectFrom('users').selectAll().execute();
    expect(ours).toHaveLength(500);
    const mismatches = ours
      .filter((u) => expectedState(truth.get(u.externalUserId)!) !== u.kycState)
      .map((u) => `${u.externalUserId}: ours ${u.kycState}, Capa ${truth.get(u.externalUserId)!.kycState}`);
    expect(mismatches).toEqual([]);

    for (const u of ours) {
      const hist = await stateHistory(rt.db, u.id);
      const reached = reachedFinals(truth.get(u.externalUserId)!);
      const finals = new Set(hist.map((h) => h.toState).filter((s) => FINAL_STATES.includes(s)));
      for (const f of finals)
        expect(reached.has(f as KycOutcome), `${u.externalUserId} showed ${f}, Capa reached ${[...reached].join(',') || 'nothing'}`).toBe(
          true,
        );
      // Never back to IN_PROGRESS after a final outcome (LINK_ISSUED only by a new link).
      const firstFinal = hist.findIndex((h) => FINAL_STATES.includes(h.toState));
      if (firstFinal >= 0) {
        for (const h of hist.slice(firstFinal + 1)) {
          expect(h.toState).not.toBe('IN_PROGRESS');
          if (h.toState === 'LINK_ISSUED') expect(h.reason).toBe('link generated');
        }
      }
    }

    // The cycle asked about every customer that was not settled yet (non-final or review), once.
    const expectedAsked = users.filter((u) => chosen.get(u.id) !== 'VERIFIED' && chosen.get(u.id) !== 'REJECTED').length;
    expect(run.total).toBeGreaterThanOrEqual(expectedAsked);
    expect(run.answered + run.failed).toBe(run.total);
    expect(run.failed).toBe(0);

    // Every poll that moved a state is a drift entry naming the run and the event we missed.
    const driftChanges = await rt.db.selectFrom('stateChanges').select(['id', 'fromState', 'toState']).where('drift', '=', 1).execute();
    expect(driftChanges.length).toBeGreaterThan(20);
    const drift = await listDrift(rt.db, { page: 1, pageSize: 1000 });
    expect(drift.total).toBe(driftChanges.length);
    const fromRun = drift.rows.filter((d) => d.runId === run.id);
    expect(fromRun.length).toBe(run.drift);
    expect(fromRun.length).toBeGreaterThan(0);
    for (const d of fromRun) {
      expect(d.triggeredBy).toBe(`refresh:${run.id}`);
      expect(d.jobName).toBe('fetch-details');
      expect(d.missedEvents).toBeTruthy();
      expect(d.evidence).toMatch(/never received|received/);
    }
    // A customer stuck at LINK_ISSUED whose outcome arrived by poll missed CREATED_KYC too.
    const jump = fromRun.find((d) => d.wasState === 'LINK_ISSUED' && d.nowState === 'VERIFIED');
    if (jump) expect(jump.missedEvents).toBe('CREATED_KYC,VERIFIED_USER');

    // A second cycle finds nothing new: re-invited customers are not pulled back to the old outcome.
    const states = new Map(ours.map((u) => [u.id, u.kycState]));
    const second = await refreshCycle(rt);
    await quiet(rt);
    expect(second.drift).toBe(0);
    const again = await rt.db.selectFrom('users').select(['id', 'kycState']).execute();
    expect(again.filter((u) => states.get(u.id) !== u.kycState)).toEqual([]);
  });
});

describe('refresh edge cases: unknown values, 404 and 429 storms', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false, env: { ...ENV, CAPA_RATE_LIMIT_PER_SEC: '500' } });
    await rt.startWorkers({ schedules: false });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('maps the known verificationResult spellings and refuses to guess the rest', () => {
    for (const v of ['VERIFIED', 'APPROVED', 'approved', 'Passed'])
      expect(mapVerificationResult(v)).toEqual({ state: 'VERIFIED', known: true });
    for (const v of ['REJECTED', 'DECLINED', 'failed']) expect(mapVerificationResult(v)).toEqual({ state: 'REJECTED', known: true });
    for (const v of ['REVIEW_NEEDED', 'manual review', 'NEEDS-REVIEW'])
      expect(mapVerificationResult(v)).toEqual({ state: 'REVIEW_NEEDED', known: true });
    for (const v of ['PENDING', 'IN_PROGRESS', '', null]) expect(mapVerificationResult(v)).toEqual({ state: 'IN_PROGRESS', known: true });
    expect(mapVerificationResult('SOMETHING')).toEqual({ state: null, known: false, raw: 'SOMETHING' });
    expect(mapVerificationResult('VERIFIED_MAYBE')).toMatchObject({ known: false });
  });

  it('an outcome older than the re-invitation does not pull a re-invited customer back', () => {
    const reinvitation = { from: 'REJECTED' as const, at: '2026-03-01T10:00:00.000Z' };
    expect(
      decide('LINK_ISSUED', { kind: 'POLLED', state: 'REJECTED', verificationCreatedAt: '2026-03-01T09:00:00.000Z', reinvitation }),
    ).toEqual({ effect: 'noop', because: 'before_reinvitation' });
    expect(decide('LINK_ISSUED', { kind: 'POLLED', state: 'REJECTED' })).toEqual({ effect: 'apply', to: 'REJECTED' });
    // A link sent while a verification was under way re-invites nobody: its outcome still counts.
    expect(
      decide('IN_PROGRESS', { kind: 'POLLED', state: 'VERIFIED', verificationCreatedAt: '2026-03-01T09:00:00.000Z', reinvitation: null }),
    ).toEqual({ effect: 'apply', to: 'VERIFIED' });
  });

  it(
    'unknown verificationResult values are kept raw and flagged, never guessed into a final state; 404 is an answer',
    { timeout: 120_000 },
    async () => {
      const users = await onboardMany(rt, 12, 'unknown');
      rt.sandbox.setDelivery({ dropRate: 1 });
      // 0-3: VERIFIED reported as an unknown value; 4-5: rejected as an unknown value; 6-7: APPROVED
      // (a known synonym); 8-9: no KYC yet (Capa answers 404); 10-11: unknown value, webhooks arrive.
      for (const [i, u] of users.entries()) {
        if (i <= 3) rt.sandbox.setOutcome(u.capaUserId!, 'VERIFIED', { verificationResult: 'SOMETHING' });
        else if (i <= 5) rt.sandbox.setOutcome(u.capaUserId!, 'REJECTED', { verificationResult: 'DENIED_BY_RULE_7' });
        else if (i <= 7) rt.sandbox.setOutcome(u.capaUserId!, 'VERIFIED', { verificationResult: 'APPROVED' });
      }
      await quiet(rt);
      rt.sandbox.setDelivery({ dropRate: 0 });
      for (const u of users.slice(10)) rt.sandbox.setOutcome(u.capaUserId!, 'VERIFIED', { verificationResult: 'SOMETHING' });
      await quiet(rt);

      const run = await refreshCycle(rt);
      expect(run.failed).toBe(0);
      const after = new Map(
        (
          await rt.db
            .selectFrom('users')
            .selectAll()
            .where(
              'id',
              'in',
              users.map((u) => u.id),
            )
            .execute()
        ).map((u) => [u.id, u]),
      );
      for (const [i, u] of users.entries()) {
        const a = after.get(u.id)!;
        const hist = await stateHistory(rt.db, u.id);
        if (i <= 5) {
          expect(a.kycState).toBe('LINK_ISSUED');
          expect(a.unmappedResult).toBe(i <= 3 ? 'SOMETHING' : 'DENIED_BY_RULE_7');
          expect(hist.some((h) => FINAL_STATES.includes(h.toState))).toBe(false);
          const snap = await rt.db
            .selectFrom('kycDetails')
            .select(['verificationResult', 'mappedState'])
            .where('userId', '=', u.id)
            .orderBy('fetchedAt', 'desc')
            .executeTakeFirstOrThrow();
          expect(snap).toEqual({ verificationResult: a.unmappedResult, mappedState: null });
        } else if (i <= 7) {
          expect(a.kycState).toBe('VERIFIED');
          expect(a.unmappedResult).toBeNull();
          expect(hist.at(-1)).toMatchObject({ causeType: 'poll', drift: 1, toState: 'VERIFIED' });
        } else if (i <= 9) {
          // 404 "no KYC yet": the customer stays where it is and counts as answered.
          expect(a.kycState).toBe('LINK_ISSUED');
          expect(a.unmappedResult).toBeNull();
          expect(a.capaConfirmedAt! >= run.startedAt!).toBe(true);
        } else {
          // The signed webhook said VERIFIED; an unmappable poll never demotes it.
          expect(a.kycState).toBe('VERIFIED');
        }
      }
      // The Drift page lists nothing for the unknown values (nothing was applied), the run answered all.
      const p = await runProgress(rt.db, (await getRun(rt.db, run.id))!);
      expect(p).toMatchObject({ pending: 0, failed: 0 });
    },
  );

  it('a 429 storm slows the refresh down but burns no attempt and loses no customer', { timeout: 180_000 }, async () => {
    const users = await onboardMany(rt, 60, 'storm');
    rt.sandbox.setDelivery({ dropRate: 1 });
    const outcomes: KycOutcome[] = ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED', 'PENDING'];
    users.forEach((u, i) => rt.sandbox.setOutcome(u.capaUserId!, outcomes[i % 4]!));
    await quiet(rt);
    rt.sandbox.setDelivery({ dropRate: 0 });
    const before429 = rt.sandbox.stats().sent429;
    rt.sandbox.setFaults({ rate429: 0.7, retryAfterSec: 0.05 });
    let run;
    try {
      run = await refreshCycle(rt);
    } finally {
      rt.sandbox.setFaults({});
    }
    expect(rt.sandbox.stats().sent429 - before429).toBeGreaterThan(30);
    const truth = new Map(rt.sandbox.users().map((t) => [t.externalUserId, t]));
    for (const u of await rt.db
      .selectFrom('users')
      .selectAll()
      .where(
        'id',
        'in',
        users.map((x) => x.id),
      )
      .execute()) {
      expect(u.kycState, u.externalUserId).toBe(expectedState(truth.get(u.externalUserId)!));
    }
    expect(run.failed).toBe(0);
    expect(run.answered).toBe(run.total);
    // 429s that outlasted the client's own retries paused the queue and went back without an attempt.
    const runs = await rt.db
      .selectFrom('jobRuns')
      .select(['status', 'error', 'attempt'])
      .where('jobName', '=', 'fetch-details')
      .where(
        'userId',
        'in',
        users.map((x) => x.id),
      )
      .execute();
    expect(runs.filter((r) => r.status === 'failed')).toEqual([]);
    const paused = runs.filter((r) => r.status === 'retrying' && /rate-limited by Capa/.test(r.error ?? ''));
    expect(paused.length).toBeGreaterThan(0);
    expect(Math.max(...runs.map((r) => r.attempt))).toBe(1);
  });
});
