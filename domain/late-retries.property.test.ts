import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KycState } from './kyc-states.js';
import {
  decide,
  mapVerificationResult,
  repeatsReinvitedRejection,
  type Decision,
  type KycSignal,
  type Reinvitation,
} from './state-machine.js';

/**
 * A customer is rejected and re-invited, perhaps several times, while Capa retries every
 * webhook of the earlier attempts up to 31 minutes late (sometimes by hand, hours later),
 * duplicates, reorders or drops them, and Get KYC Details is polled at any moment. This model
 * runs the real decisions — `decide` (as applySignal calls it) and the echo rule the retry
 * programme uses — in a discrete-event simulation of the rest: the details check after a webhook,
 * the programme's deferred link, the minute sweep, the customer submitting on each new link.
 *
 * Property: one programme per rejected verification, one link (and its e-mail) per programme
 * plus the first, no state moved by an earlier attempt's event or details, and the state left is
 * Capa's truth for the current link.
 */

const MIN = 60_000;
const EPOCH = Date.UTC(2026, 2, 2, 8, 0, 0);
const iso = (t: number) => new Date(EPOCH + t).toISOString();

type Step = 'REVIEW_NEEDED' | 'REJECTED' | 'VERIFIED';
type Event = 'CREATED_KYC' | 'VERIFIED_USER' | 'REJECTED_KYC' | 'REVIEW_NEEDED_KYC';
const EVENT_OF: Record<Step, Event> = { REVIEW_NEEDED: 'REVIEW_NEEDED_KYC', REJECTED: 'REJECTED_KYC', VERIFIED: 'VERIFIED_USER' };
const PROGRESSED: readonly KycState[] = ['IN_PROGRESS', 'VERIFIED', 'REVIEW_NEEDED'];

interface Journey {
  /** After the link's e-mail, when the customer submits. */
  customerDelay: number;
  /** Capa's verdicts after the submission (the verification starts PENDING), each after `gap`. */
  steps: Array<{ outcome: Step; gap: number }>;
  /** Per emitted event (CREATED_KYC, then one per step): the delay of each delivery that reaches us. */
  deliveries: number[][];
}

interface Scenario {
  journeys: Journey[];
  /** Refresh scans and "Fetch KYC details now", at these times. */
  polls: number[];
  fetchLatency: number;
  linkLatency: number;
}

/** The decisions under test; injectable so the model can be pointed at another rule set. */
interface Rules {
  decide(current: KycState, signal: KycSignal): Decision;
  isEcho(e: { from: KycState; to: KycState; reinvitation: Reinvitation | null; verificationCreatedAt: string | null }): boolean;
}

const CURRENT_RULES: Rules = { decide, isEcho: repeatsReinvitedRejection };

interface Verification {
  journey: number;
  createdAt: number;
  result: 'PENDING' | Step;
}

interface Programme {
  verification: number | null;
  rejectedAt: number;
  active: boolean;
  /** The step-0 message waits for its link; cancelled when the customer moves on first. */
  message: 'waiting' | 'requested' | 'cancelled' | 'sent';
}

type Pending = { t: number; seq: number; kind: 'sweep' | 'work'; run: () => void };

function simulate(sc: Scenario, rules: Rules = CURRENT_RULES) {
  const queue: Pending[] = [];
  let seq = 0;
  let now = 0;
  const at = (t: number, run: () => void, kind: Pending['kind'] = 'work') => queue.push({ t, seq: seq++, kind, run });

  // Capa
  const verifications: Verification[] = [];
  let lastCapaChange = 0;
  // KYC Desk
  let state: KycState = 'LINK_ISSUED'; // imported with sendLink=yes: the first link is out
  let changedAt = 0;
  let confirmedAt = -1;
  let reinvitation: Reinvitation | null = null;
  let snapshot: Verification | null = null;
  let lastPollAt = -1;
  const history: Array<{ t: number; from: KycState; to: KycState; cause: string; verification: number | null }> = [
    { t: 0, from: 'NOT_STARTED', to: 'LINK_ISSUED', cause: 'link', verification: null },
  ];
  const programmes: Programme[] = [];
  let links = 1;
  let emails = 1;
  const violations: string[] = [];

  /** applySignal: the re-invitation is looked up only when the signal would move the customer. */
  const apply = (signal: KycSignal): Decision => {
    let d = rules.decide(state, signal);
    if (d.effect === 'apply' && (signal.kind === 'WEBHOOK' || signal.kind === 'POLLED'))
      d = rules.decide(state, { ...signal, reinvitation });
    return d;
  };
  const predates = (v: Verification) => reinvitation !== null && iso(v.createdAt) <= reinvitation.at;

  const change = (to: KycState, cause: string, verification: number | null) => {
    const from = state;
    state = to;
    changedAt = now;
    history.push({ t: now, from, to, cause, verification });
    onStateChanged(from, to, verification);
  };

  const requestLink = (p: Programme) => {
    p.message = 'requested';
    at(now + sc.linkLatency, () => linkIssued(p));
  };

  const startProgramme = (verification: number | null) => {
    if (programmes.some((p) => p.rejectedAt === changedAt)) return; // unique per rejection
    for (const p of programmes) p.active = false; // "rejected again": the new one takes over
    const p: Programme = { verification, rejectedAt: changedAt, active: true, message: 'waiting' };
    programmes.push(p);
    // The link waits for Capa to confirm the rejection (a poll at or after it), or 10 minutes.
    if (confirmedAt >= changedAt) requestLink(p);
  };

  const onStateChanged = (from: KycState, to: KycState, verification: number | null) => {
    if (to === 'REJECTED') {
      if (rules.isEcho({ from, to, reinvitation, verificationCreatedAt: snapshot ? iso(snapshot.createdAt) : null })) return;
      startProgramme(verification);
    }
    if (PROGRESSED.includes(to)) {
      for (const p of programmes) {
        p.active = false;
        if (p.message === 'waiting') p.message = 'cancelled';
      }
    }
  };

  const linkIssued = (p: Programme) => {
    links++;
    // The retry e-mail carries it (or, its message cancelled meanwhile, the plain link e-mail).
    emails++;
    if (p.message === 'requested') p.message = 'sent';
    const d = rules.decide(state, { kind: 'LINK_ISSUED' });
    if (d.effect === 'apply') {
      reinvitation = { from: state, at: iso(now) };
      change(d.to, 'link', null);
    }
    const next = links - 1;
    const j = sc.journeys[next];
    if (j) at(now + j.customerDelay, () => submit(next));
  };

  const deliver = (journey: number, event: Event) => {
    const v = verifications.find((x) => x.journey === journey)!;
    const d = apply({ kind: 'WEBHOOK', event });
    if (d.effect === 'apply') {
      if (predates(v)) violations.push(`${event} of attempt ${journey} (retried late) moved ${state} → ${d.to}`);
      const before = state;
      change(d.to, `webhook:${event}`, journey);
      if (event !== 'CREATED_KYC' && before !== d.to) at(now + sc.fetchLatency, poll);
    } else if (d.effect === 'conflict_check') {
      at(now + sc.fetchLatency, poll);
    }
  };

  const poll = () => {
    lastPollAt = now;
    const latest = verifications.at(-1);
    confirmedAt = now;
    if (!latest) return;
    snapshot = latest;
    const truth = mapVerificationResult(latest.result).state;
    const d = apply({ kind: 'POLLED', state: truth, verificationCreatedAt: iso(latest.createdAt) });
    if (d.effect === 'apply') {
      if (predates(latest)) violations.push(`details of attempt ${latest.journey} (older than the re-invitation) moved ${state} → ${d.to}`);
      change(d.to, 'poll', latest.journey);
    }
  };

  const submit = (journey: number) => {
    const plan = sc.journeys[journey]!;
    const v: Verification = { journey, createdAt: now, result: 'PENDING' };
    verifications.push(v);
    lastCapaChange = now;
    const emit = (event: Event, delays: number[] | undefined) => {
      for (const delay of delays ?? []) at(now + delay, () => deliver(journey, event));
    };
    emit('CREATED_KYC', plan.deliveries[0]);
    let t = now;
    plan.steps.forEach((s, i) => {
      t += s.gap;
      at(t, () => {
        v.result = s.outcome;
        lastCapaChange = now;
        emit(EVENT_OF[s.outcome], plan.deliveries[i + 1]);
      });
    });
  };

  const pendingNotifications = () =>
    programmes.some((p) => p.message === 'waiting') ||
    (state === 'REJECTED' && !programmes.some((p) => p.rejectedAt === changedAt) && now - changedAt < 1440 * MIN);

  const sweep = () => {
    // A rejection no hook followed up (same echo rule), programmes overtaken, deferred links.
    if (state === 'REJECTED' && !programmes.some((p) => p.rejectedAt === changedAt) && now - changedAt < 1440 * MIN) {
      const last = history.at(-1)!;
      if (
        !rules.isEcho({ from: last.from, to: 'REJECTED', reinvitation, verificationCreatedAt: snapshot ? iso(snapshot.createdAt) : null })
      )
        startProgramme(last.verification);
    }
    if (PROGRESSED.includes(state)) for (const p of programmes) p.active = false;
    for (const p of programmes) {
      if (p.message !== 'waiting') continue;
      if (confirmedAt >= changedAt || now - p.rejectedAt > 10 * MIN) requestLink(p);
    }
    if (queue.some((e) => e.kind === 'work') || pendingNotifications()) at(now + MIN, sweep, 'sweep');
  };

  at(sc.journeys[0]!.customerDelay, () => submit(0));
  for (const t of sc.polls) at(t, poll);
  at(MIN, sweep, 'sweep');

  let settles = 0;
  for (;;) {
    if (queue.length === 0) {
      // Settle: a last refresh whenever Capa changed after our last look (bounded: one per journey).
      if (lastPollAt >= lastCapaChange || settles > sc.journeys.length + 2) break;
      settles++;
      at(now + 60 * MIN, poll);
      at(now + 61 * MIN, sweep, 'sweep');
    }
    queue.sort((a, b) => a.t - b.t || a.seq - b.seq);
    const next = queue.shift()!;
    now = next.t;
    next.run();
  }

  // (Assigned in closures: widen what control flow narrowed to the initial values.)
  return {
    state: state as KycState,
    reinvitation: reinvitation as Reinvitation | null,
    verifications,
    programmes,
    links,
    emails,
    history,
    violations,
  };
}

// ---------------------------------------------------------------------------------------------

const delays = fc.array(
  fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 31 * MIN }) },
    { weight: 1, arbitrary: fc.integer({ min: 31 * MIN, max: 360 * MIN }) },
  ),
  { maxLength: 3 },
);
const gap = fc.integer({ min: 5_000, max: 40 * MIN });
const step = (outcome: Step) => gap.map((g) => ({ outcome, gap: g }));
const journey = (steps: fc.Arbitrary<Journey['steps']>): fc.Arbitrary<Journey> =>
  fc
    .record({ customerDelay: fc.integer({ min: 30_000, max: 180 * MIN }), steps })
    .chain((j) =>
      fc.array(delays, { minLength: j.steps.length + 1, maxLength: j.steps.length + 1 }).map((deliveries) => ({ ...j, deliveries })),
    );
/** Earlier attempts end rejected (that is why the customer was re-invited). */
const earlier = journey(fc.oneof(fc.tuple(step('REJECTED')), fc.tuple(step('REVIEW_NEEDED'), step('REJECTED'))));
/** The current link's attempt: anything, including nothing yet. */
const current = journey(
  fc.oneof(
    fc.constant([]),
    fc.tuple(step('VERIFIED')),
    fc.tuple(step('REJECTED')),
    fc.tuple(step('REVIEW_NEEDED')),
    fc.tuple(step('REVIEW_NEEDED'), step('VERIFIED')),
    fc.tuple(step('REVIEW_NEEDED'), step('REJECTED')),
  ),
);
const scenario: fc.Arbitrary<Scenario> = fc.record({
  journeys: fc.tuple(fc.array(earlier, { minLength: 1, maxLength: 3 }), current).map(([e, c]) => [...e, c]),
  polls: fc.array(fc.integer({ min: 0, max: 12 * 60 * MIN }), { maxLength: 8 }),
  fetchLatency: fc.integer({ min: 1, max: 5_000 }),
  linkLatency: fc.integer({ min: 1, max: 5_000 }),
});

function expectedState(r: ReturnType<typeof simulate>): KycState {
  const latest = r.verifications.at(-1);
  if (!latest || (r.reinvitation && iso(latest.createdAt) <= r.reinvitation.at)) return 'LINK_ISSUED';
  return mapVerificationResult(latest.result).state!;
}

describe('late retries of earlier attempts after a re-invitation (model with the real decisions)', () => {
  it('one programme per rejection, one link and e-mail per programme, no state moved by an earlier attempt', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const r = simulate(sc);
        expect(r.violations).toEqual([]);
        const rejected = r.verifications.filter((v) => v.result === 'REJECTED').map((v) => v.journey);
        expect(r.programmes.map((p) => p.verification).sort()).toEqual(rejected.sort());
        expect(r.links).toBe(1 + rejected.length);
        expect(r.emails).toBe(r.links);
        expect(r.state).toBe(expectedState(r));
      }),
      { numRuns: 300 },
    );
  });

  it("the reported case: rejected, re-invited, then the first attempt's CREATED_KYC and REVIEW_NEEDED_KYC retried, then a poll of the old verification", () => {
    const r = simulate({
      journeys: [
        // Submitted 2 min after the first e-mail; review after 1 min, rejected after 2 more.
        // CREATED_KYC and REVIEW_NEEDED_KYC fail at first and arrive on Capa's later retries.
        {
          customerDelay: 2 * MIN,
          steps: [
            { outcome: 'REVIEW_NEEDED', gap: MIN },
            { outcome: 'REJECTED', gap: 2 * MIN },
          ],
          deliveries: [[31 * MIN], [30 * MIN], [0]],
        },
        // The customer has not used the new link yet.
        { customerDelay: 10 * 60 * MIN, steps: [], deliveries: [[]] },
      ],
      // The stale-status refresh 35 minutes after the retries.
      polls: [70 * MIN],
      fetchLatency: 500,
      linkLatency: 500,
    });
    expect(r.violations).toEqual([]);
    expect(r.programmes).toHaveLength(1);
    expect(r.links).toBe(2);
    // Re-invited (LINK_ISSUED, from the rejection); then the new attempt, settled by the last refresh.
    expect(r.history.slice(0, 3).map((h) => h.to)).toEqual(['LINK_ISSUED', 'REJECTED', 'LINK_ISSUED']);
    expect(r.history.slice(3).every((h) => h.t > 10 * 60 * MIN)).toBe(true);
  });
});
