import { describe, expect, it } from 'vitest';
import { KYC_STATES, type KycState } from '../db/schema.js';
import { decide, isFinal, mapVerificationResult, type KycSignal } from './state-machine.js';

const EVENTS = ['CREATED_KYC', 'VERIFIED_USER', 'REJECTED_KYC', 'REVIEW_NEEDED_KYC'] as const;
const TARGET = { VERIFIED_USER: 'VERIFIED', REJECTED_KYC: 'REJECTED', REVIEW_NEEDED_KYC: 'REVIEW_NEEDED' } as const;

describe('KYC state machine — every state × every signal', () => {
  // The expected table, written out by hand from capa-api.md §3.3 and ARCHITECTURE principle 3.
  const webhookTable: Record<KycState, Record<(typeof EVENTS)[number], string>> = {
    NOT_STARTED: { CREATED_KYC: 'apply:IN_PROGRESS', VERIFIED_USER: 'apply:VERIFIED', REJECTED_KYC: 'apply:REJECTED', REVIEW_NEEDED_KYC: 'apply:REVIEW_NEEDED' },
    LINK_ISSUED: { CREATED_KYC: 'apply:IN_PROGRESS', VERIFIED_USER: 'apply:VERIFIED', REJECTED_KYC: 'apply:REJECTED', REVIEW_NEEDED_KYC: 'apply:REVIEW_NEEDED' },
    IN_PROGRESS: { CREATED_KYC: 'noop', VERIFIED_USER: 'apply:VERIFIED', REJECTED_KYC: 'apply:REJECTED', REVIEW_NEEDED_KYC: 'apply:REVIEW_NEEDED' },
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

  it('a re-invited customer: the same outcome again without CREATED_KYC asks Capa; another outcome applies', () => {
    expect(decide('LINK_ISSUED', { kind: 'WEBHOOK', event: 'REJECTED_KYC', relinkedFrom: 'REJECTED' }).effect).toBe('conflict_check');
    expect(fmt(decide('LINK_ISSUED', { kind: 'WEBHOOK', event: 'VERIFIED_USER', relinkedFrom: 'REJECTED' }))).toBe('apply:VERIFIED');
    expect(fmt(decide('LINK_ISSUED', { kind: 'WEBHOOK', event: 'CREATED_KYC', relinkedFrom: 'REJECTED' }))).toBe('apply:IN_PROGRESS');
    expect(fmt(decide('LINK_ISSUED', { kind: 'WEBHOOK', event: 'REJECTED_KYC', relinkedFrom: null }))).toBe('apply:REJECTED');
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
    ['VERIFIED', 'VERIFIED'], ['APPROVED', 'VERIFIED'], ['approved', 'VERIFIED'],
    ['REJECTED', 'REJECTED'], ['DECLINED', 'REJECTED'],
    ['REVIEW_NEEDED', 'REVIEW_NEEDED'], ['needs review', 'REVIEW_NEEDED'], ['MANUAL_REVIEW', 'REVIEW_NEEDED'],
    ['PENDING', 'IN_PROGRESS'], ['', 'IN_PROGRESS'],
  ])('%s → %s', (raw, state) => {
    expect(mapVerificationResult(raw)).toMatchObject({ known: true, state });
  });

  it('keeps unknown values raw and never guesses a state', () => {
    expect(mapVerificationResult('WEIRD_NEW_VALUE')).toEqual({ known: false, state: null, raw: 'WEIRD_NEW_VALUE' });
  });
});
