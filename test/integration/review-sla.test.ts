import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reviewQueue, setCaseStatus } from '../../app/review/cases.server.js';
import { slaClock, slaTargetsFromHours, waitingOnAt } from '../../app/review/sla.js';
import { insertUser } from '../../db/repositories/users.js';
import type { KycState } from '../../db/schema.js';
import { createTestDb, type TestDb } from '../support/runtime.js';

/** SLA clocks with a fake clock: `now` is injected, timestamps are fixed. */
const H = 3_600_000;
const T0 = Date.parse('2026-03-02T09:00:00Z');
const at = (hours: number) => new Date(T0 + hours * H).toISOString();
const targets = slaTargetsFromHours({ customer: 72, capa: 48, us: 24 });

describe('SLA clock (pure)', () => {
  it('attributes each stretch to who we wait on and reports the current wait', () => {
    // REVIEW_NEEDED at 0 (us) → operator waits on Capa at 5 → Capa rejects at 20 (us again)
    // → operator sends a new link at 22 (customer) → customer submits at 40 (Capa).
    const input = {
      openedAt: at(0),
      currentState: 'IN_PROGRESS' as KycState,
      currentStateAt: at(40),
      stateChanges: [
        { at: at(-10), toState: 'IN_PROGRESS' as KycState },
        { at: at(0), toState: 'REVIEW_NEEDED' as KycState },
        { at: at(20), toState: 'REJECTED' as KycState },
        { at: at(22), toState: 'LINK_ISSUED' as KycState },
        { at: at(40), toState: 'IN_PROGRESS' as KycState },
      ],
      statusChanges: [{ at: at(5), status: 'waiting_capa' as const }],
    };
    const c = slaClock(input, T0 + 50 * H, targets);
    expect(c.waitingOn).toBe('capa');
    expect(c.since).toBe(at(40));
    expect(c.currentMs).toBe(10 * H);
    expect(c.breached).toBe(false);
    expect(c.totals).toEqual({ us: 5 * H + 2 * H, capa: 15 * H + 10 * H, customer: 18 * H });
    // The same case 39 hours later has waited on Capa past its 48 h target.
    const later = slaClock(input, T0 + 89 * H, targets);
    expect(later).toMatchObject({ waitingOn: 'capa', currentMs: 49 * H, targetMs: 48 * H, breached: true });
  });

  it('a "waiting on" status set before Capa answered no longer counts: the case is back with us', () => {
    expect(waitingOnAt('REJECTED', at(10), 'waiting_capa', at(5))).toBe('us');
    expect(waitingOnAt('REJECTED', at(10), 'waiting_capa', at(11))).toBe('capa');
    expect(waitingOnAt('REVIEW_NEEDED', at(10), 'waiting_customer', at(12))).toBe('customer');
    expect(waitingOnAt('LINK_ISSUED', at(10), 'open', at(12))).toBe('customer');
    expect(waitingOnAt('IN_PROGRESS', at(10), 'waiting_customer', at(12))).toBe('capa');
    expect(waitingOnAt('REVIEW_NEEDED', at(10), 'resolved', at(12))).toBeNull();
  });

  it('breaches exactly past the target for us, and a resolved case stops the clock', () => {
    const input = {
      openedAt: at(0),
      currentState: 'REVIEW_NEEDED' as KycState,
      currentStateAt: at(0),
      stateChanges: [],
      statusChanges: [],
    };
    expect(slaClock(input, T0 + 24 * H, targets)).toMatchObject({ waitingOn: 'us', breached: false, currentMs: 24 * H });
    expect(slaClock(input, T0 + 24 * H + 1, targets)).toMatchObject({ waitingOn: 'us', breached: true });
    const resolved = slaClock({ ...input, statusChanges: [{ at: at(3), status: 'resolved' }] }, T0 + 100 * H, targets);
    expect(resolved).toMatchObject({ waitingOn: null, breached: false, currentMs: 0 });
    expect(resolved.totals.us).toBe(3 * H);
  });
});

describe('review queue with an injected clock', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb('sqlite');
  });
  afterAll(async () => {
    await t?.close();
  });

  async function customer(email: string, state: KycState, changedAt: string, country: 'MX' | 'DO' = 'MX') {
    const u = await insertUser(t.db, { email, type: 'INDIVIDUAL', country });
    await t.db.updateTable('users').set({ kycState: state, kycStateChangedAt: changedAt }).where('id', '=', u.id).execute();
    await t.db
      .insertInto('stateChanges')
      .values({ userId: u.id, at: changedAt, fromState: 'IN_PROGRESS', toState: state, causeType: 'webhook', causeId: null, reason: null })
      .execute();
    return u.id;
  }

  it('lists REVIEW_NEEDED and REJECTED oldest first, colours breaches, filters by breached/state/country', async () => {
    const old = await customer('old@x.mx', 'REVIEW_NEEDED', at(0));
    const rej = await customer('rej@x.mx', 'REJECTED', at(10), 'DO');
    const fresh = await customer('fresh@x.mx', 'REVIEW_NEEDED', at(30));
    await customer('done@x.mx', 'VERIFIED', at(1));
    await customer('busy@x.mx', 'IN_PROGRESS', at(1));
    const now = T0 + 40 * H;
    const q = await reviewQueue(t.db, { filters: {}, operatorId: null, now, targets });
    expect(q.rows.map((r) => r.userId)).toEqual([old, rej, fresh]);
    expect(q.rows.map((r) => [r.sla.waitingOn, r.sla.currentMs / H, r.sla.breached])).toEqual([
      ['us', 40, true],
      ['us', 30, true],
      ['us', 10, false],
    ]);
    expect(q.breachedCount).toBe(2);
    expect((await reviewQueue(t.db, { filters: { breached: true }, operatorId: null, now, targets })).rows.map((r) => r.userId)).toEqual([
      old,
      rej,
    ]);
    expect(
      (await reviewQueue(t.db, { filters: { states: ['REJECTED'] }, operatorId: null, now, targets })).rows.map((r) => r.userId),
    ).toEqual([rej]);
    expect((await reviewQueue(t.db, { filters: { country: 'DO' }, operatorId: null, now, targets })).rows.map((r) => r.userId)).toEqual([
      rej,
    ]);
    // Earlier, nothing was breached yet.
    expect((await reviewQueue(t.db, { filters: { breached: true }, operatorId: null, now: T0 + 20 * H, targets })).rows).toEqual([]);

    // Waiting on the customer moves the clock to the customer's (longer) target; resolving removes the case.
    const actor = { id: null, label: 'test' };
    await setCaseStatus(t.db, old, actor, { status: 'waiting_customer' });
    const after = (await reviewQueue(t.db, { filters: {}, operatorId: null, now: Date.now() + H, targets })).rows.find(
      (r) => r.userId === old,
    )!;
    expect(after.caseStatus).toBe('waiting_customer');
    expect(after.sla.waitingOn).toBe('customer');
    await setCaseStatus(t.db, rej, actor, { status: 'resolved', reason: 'rejection_confirmed' });
    expect((await reviewQueue(t.db, { filters: {}, operatorId: null, now, targets })).rows.map((r) => r.userId)).not.toContain(rej);
    // …until the customer is rejected again later: the case reopens by itself.
    const again = new Date(Date.now() + 1000).toISOString();
    await t.db.updateTable('users').set({ kycStateChangedAt: again }).where('id', '=', rej).execute();
    expect(
      (await reviewQueue(t.db, { filters: {}, operatorId: null, now: Date.now() + 2000, targets })).rows.map((r) => r.userId),
    ).toContain(rej);
  });
});
