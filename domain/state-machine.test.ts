import { describe, expect, it } from 'vitest';
import { KYC_STATES, type KycState } from './kyc-states.js';
import {
  capaInstant,
  decide,
  isFinal,
  mapVerificationResult,
  predatesReinvitation,
  repeatsReinvitedRejection,
  type KycSignal,
} from './state-machine.js';

const EVENTS = ['CREATED_KYC', 'VERIFIED_USER', 'REJECTED_KYC', 'REVIEW_NEEDED_KYC'] as const;
const TARGET = { VERIFIED_USER: 'VERIFIED', REJECTED_KYC: 'REJECTED', REVIEW_NEEDED_KYC: 'REVIEW_NEEDED' } as const;

describe('KYC state machine — every state × every signal', () => {
  // The expected table, written out by hand from capa-api.md §3.3 and ARCHITECTURE principle 3.
  const webhookTable: Record<KycState, Record<(typeof EVENTS)[number], string>> = {
    NOT_STARTED: {
      CREATED_KYC: 'apply:IN_PROGRESS',
      VERIFIED_USER: 'apply:VERIFIED',
      REJECTED_KYC: 'apply:REJECTED',
      REVIEW_NEEDED_KYC: 'apply:REVIEW_NEEDED',
    },
    LINK_ISSUED: {
      CREATED_KYC: 'apply:IN_PROGRESS',
      VERIFIED_USER: 'apply:VERIFIED',
      REJECTED_KYC: 'apply:REJECTED',
      REVIEW_NEEDED_KYC: 'apply:REVIEW_NEEDED',
    },
    IN_PROGRESS: {
      CREATED_KYC: 'noop',
      VERIFIED_USER: 'apply:VERIFIED',
      REJECTED_KYC: 'apply:REJECTED',
      REVIEW_NEEDED_KYC: 'apply:REVIEW_NEEDED',
    },
    VERIFIED: { CREATED_KYC: 'stale', VERIFIED_USER: 'noop', REJECTED_KYC: 'conflict_check', REVIEW_NEEDED_KYC: 'conflict_check' },
    REJECTED: { CREATED_KYC: 'stale', VERIFIED_USER: 'conflict_check', REJECTED_KYC: 'noop', REVIEW_NEEDED_KYC: 'conflict_check' },
    REVIEW_NEEDED: { CREATED_KYC: 'stale', VERIFIED_USER: 'apply:VERIFIED', REJECTED_KYC: 'apply:REJECTED', REVIEW_NEEDED_KYC: 'noop' },
  };
  const fmt = (d: ReturnType<typeof decide>) => (d.effect === 'apply' ? `apply:${d.to}` : d.effect);

  for (const s of KYC_STATES) {
    for (const e of EVENTS) {
      it(`${s} + ${e} → ${webhookTable[s][e]}`, () => {
        expect(fmt(decide(s, { kind: 'WEBHOOK', event: e }))).toBe(webhookTable[s][e]);
      });
    }
  }

  it('a late CREATED_KYC never undoes any final state', () => {
    for (const s of KYC_STATES.filter(isFinal)) expect(decide(s, { kind: 'WEBHOOK', event: 'CREATED_KYC' }).effect).toBe('stale');
  });

  it('every event is idempotent: applying the result again is a noop', () => {
    for (const s of KYC_STATES) {
      for (const e of EVENTS) {
        const d = decide(s, { kind: 'WEBHOOK', event: e });
        if (d.effect === 'apply') expect(decide(d.to, { kind: 'WEBHOOK', event: e }).effect).toBe('noop');
      }
    }
  });

  it('a re-invited customer: no webhook moves them; each one that would asks Capa instead', () => {
    const reinvitation = { from: 'REJECTED' as const, at: '2026-03-01T10:00:00.000Z' };
    for (const s of KYC_STATES) {
      for (const e of EVENTS) {
        const plain = decide(s, { kind: 'WEBHOOK', event: e });
        const d = decide(s, { kind: 'WEBHOOK', event: e, reinvitation });
        // The same table, except that every move becomes a question to Capa.
        if (plain.effect === 'apply') expect(d).toEqual({ effect: 'conflict_check', because: 'reinvited' });
        else expect(d).toEqual(plain);
      }
    }
    // Never re-invited (null) or not looked up: the documented table.
    expect(fmt(decide('LINK_ISSUED', { kind: 'WEBHOOK', event: 'REJECTED_KYC', reinvitation: null }))).toBe('apply:REJECTED');
    expect(fmt(decide('LINK_ISSUED', { kind: 'WEBHOOK', event: 'CREATED_KYC', reinvitation: null }))).toBe('apply:IN_PROGRESS');
  });

  it('issuing a link starts or restarts the journey only from NOT_STARTED or REJECTED', () => {
    const sig: KycSignal = { kind: 'LINK_ISSUED' };
    expect(fmt(decide('NOT_STARTED', sig))).toBe('apply:LINK_ISSUED');
    expect(fmt(decide('REJECTED', sig))).toBe('apply:LINK_ISSUED');
    for (const s of ['LINK_ISSUED', 'IN_PROGRESS', 'VERIFIED', 'REVIEW_NEEDED'] as const) expect(decide(s, sig).effect).toBe('noop');
    for (const s of KYC_STATES) expect(decide(s, { kind: 'LINK_EXPIRED' }).effect).toBe('noop');
  });

  it('a poll applies Capa’s truth, but never demotes VERIFIED to a non-final state', () => {
    for (const s of KYC_STATES) {
      for (const truth of KYC_STATES) {
        const d = decide(s, { kind: 'POLLED', state: truth });
        if (truth === s) expect(d.effect).toBe('noop');
        else if (truth === 'NOT_STARTED' || truth === 'LINK_ISSUED') expect(d.effect).toBe('noop');
        else if (s === 'VERIFIED' && !isFinal(truth)) expect(d.effect).toBe('stale');
        else expect(fmt(d)).toBe(`apply:${truth}`);
      }
      expect(decide(s, { kind: 'POLLED', state: null }).effect).toBe('noop');
    }
  });

  describe('a poll after a re-invitation', () => {
    const reinvitation = { from: 'REJECTED' as const, at: '2026-03-01T10:00:00.000Z' };
    const before = '2026-03-01T09:59:59.999Z';
    const after = '2026-03-01T10:00:00.001Z';

    it('the verification the customer was re-invited from (or an older one) moves nobody, whatever state is shown', () => {
      for (const s of KYC_STATES) {
        for (const truth of ['REJECTED', 'IN_PROGRESS'] as const) {
          for (const at of [before, reinvitation.at]) {
            expect(decide(s, { kind: 'POLLED', state: truth, verificationCreatedAt: at, reinvitation }), `${s} ← ${truth}`).toEqual({
              effect: 'noop',
              because: 'before_reinvitation',
            });
          }
        }
      }
    });

    it('a verification created after the re-invitation is applied as usual', () => {
      for (const s of KYC_STATES) {
        for (const truth of KYC_STATES) {
          const plain = decide(s, { kind: 'POLLED', state: truth });
          expect(decide(s, { kind: 'POLLED', state: truth, verificationCreatedAt: after, reinvitation })).toEqual(plain);
        }
      }
    });

    it('an earlier verification Capa now reports with another final outcome (a revised decision) is news', () => {
      expect(fmt(decide('LINK_ISSUED', { kind: 'POLLED', state: 'VERIFIED', verificationCreatedAt: before, reinvitation }))).toBe(
        'apply:VERIFIED',
      );
      expect(fmt(decide('IN_PROGRESS', { kind: 'POLLED', state: 'REVIEW_NEEDED', verificationCreatedAt: before, reinvitation }))).toBe(
        'apply:REVIEW_NEEDED',
      );
    });

    it("without a readable verification time, or never re-invited, the poll is Capa's truth", () => {
      for (const v of [null, undefined, '', 'yesterday']) {
        expect(fmt(decide('LINK_ISSUED', { kind: 'POLLED', state: 'REJECTED', verificationCreatedAt: v, reinvitation }))).toBe(
          'apply:REJECTED',
        );
      }
      expect(fmt(decide('LINK_ISSUED', { kind: 'POLLED', state: 'REJECTED', verificationCreatedAt: before, reinvitation: null }))).toBe(
        'apply:REJECTED',
      );
    });

    it("reads Capa's zone-less timestamps as UTC, whatever the server's zone", () => {
      expect(capaInstant('2026-03-01 09:59:59.999')).toBe(Date.parse(before));
      expect(capaInstant('2026-03-01T10:00:00.001Z')).toBe(Date.parse(after));
      expect(capaInstant('2026-03-01T11:00:00.000+01:00')).toBe(Date.parse(reinvitation.at));
      expect(capaInstant(null)).toBeNaN();
      expect(capaInstant('not a time')).toBeNaN();
      expect(predatesReinvitation('2026-03-01 09:59:59.999', reinvitation)).toBe(true);
      expect(predatesReinvitation('2026-03-01 10:00:00.001', reinvitation)).toBe(false);
      expect(predatesReinvitation(undefined, reinvitation)).toBeNull();
    });
  });

  describe('a rejection that repeats the one the customer was re-invited from (no second programme)', () => {
    const reinvitation = { from: 'REJECTED' as const, at: '2026-03-01T10:00:00.000Z' };
    const states = KYC_STATES.filter((s) => s !== 'REJECTED');

    it('an earlier verification is an echo from any state; a later one is a new rejection', () => {
      for (const from of states) {
        expect(
          repeatsReinvitedRejection({ from, to: 'REJECTED', reinvitation, verificationCreatedAt: '2026-03-01T09:00:00.000Z' }),
          from,
        ).toBe(true);
        expect(
          repeatsReinvitedRejection({ from, to: 'REJECTED', reinvitation, verificationCreatedAt: '2026-03-01T10:30:00.000Z' }),
          from,
        ).toBe(false);
      }
    });

    it('never re-invited, or not a rejection: never an echo', () => {
      for (const from of states)
        expect(
          repeatsReinvitedRejection({ from, to: 'REJECTED', reinvitation: null, verificationCreatedAt: '2026-03-01T09:00:00.000Z' }),
        ).toBe(false);
      for (const to of states)
        expect(
          repeatsReinvitedRejection({ from: 'LINK_ISSUED', to, reinvitation, verificationCreatedAt: '2026-03-01T09:00:00.000Z' }),
        ).toBe(false);
    });

    it('no readable verification time: straight from LINK_ISSUED is the echo; after a state only Capa could set, a new rejection', () => {
      expect(repeatsReinvitedRejection({ from: 'LINK_ISSUED', to: 'REJECTED', reinvitation, verificationCreatedAt: null })).toBe(true);
      for (const from of ['IN_PROGRESS', 'REVIEW_NEEDED', 'VERIFIED'] as const)
        expect(repeatsReinvitedRejection({ from, to: 'REJECTED', reinvitation, verificationCreatedAt: null })).toBe(false);
    });
  });

  it('final events reach their target from every non-final state', () => {
    for (const s of KYC_STATES.filter((x) => !isFinal(x))) {
      for (const e of ['VERIFIED_USER', 'REJECTED_KYC', 'REVIEW_NEEDED_KYC'] as const) {
        expect(fmt(decide(s, { kind: 'WEBHOOK', event: e }))).toBe(`apply:${TARGET[e]}`);
      }
    }
  });
});

describe('mapVerificationResult', () => {
  it.each([
    ['VERIFIED', 'VERIFIED'],
    ['APPROVED', 'VERIFIED'],
    ['approved', 'VERIFIED'],
    ['REJECTED', 'REJECTED'],
    ['DECLINED', 'REJECTED'],
    ['REVIEW_NEEDED', 'REVIEW_NEEDED'],
    ['needs review', 'REVIEW_NEEDED'],
    ['MANUAL_REVIEW', 'REVIEW_NEEDED'],
    ['PENDING', 'IN_PROGRESS'],
    ['', 'IN_PROGRESS'],
  ])('%s → %s', (raw, state) => {
    expect(mapVerificationResult(raw)).toMatchObject({ known: true, state });
  });

  it('keeps unknown values raw and never guesses a state', () => {
    expect(mapVerificationResult('WEIRD_NEW_VALUE')).toEqual({ known: false, state: null, raw: 'WEIRD_NEW_VALUE' });
  });
});
