import { FINAL_STATES, type KycState } from '../db/schema.js';

/**
 * The KYC state machine (reference §3.3). Every state change in KYC Desk goes through
 * `decide`; it is pure so it can be tested exhaustively.
 *
 * Signals:
 *  - LINK_ISSUED: we generated a KYC link.
 *  - CREATED_KYC / VERIFIED_USER / REJECTED_KYC / REVIEW_NEEDED_KYC: Capa webhooks. They carry
 *    no timestamp or id, may arrive twice, late or out of order.
 *  - POLLED: Get KYC Details said the latest verification maps to `state` (the truth at that
 *    moment); `null` means Capa has no KYC for the user yet (404).
 */
export type KycSignal =
  | { kind: 'LINK_ISSUED' }
  | { kind: 'LINK_EXPIRED' }
  | {
      kind: 'WEBHOOK';
      event: 'CREATED_KYC' | 'VERIFIED_USER' | 'REJECTED_KYC' | 'REVIEW_NEEDED_KYC';
      /** The final state the customer left when we issued the current link (a re-invitation). */
      relinkedFrom?: KycState | null;
    }
  | {
      kind: 'POLLED';
      state: KycState | null;
      /**
       * Capa's latest verification is older than the link we issued last: it is the previous
       * attempt's (a rejected customer re-invited) and says nothing about the new link yet.
       */
      beforeCurrentLink?: boolean;
    };

export type Decision =
  /** Move to `to`. */
  | { effect: 'apply'; to: KycState }
  /** Already there: nothing to change (duplicates land here). */
  | { effect: 'noop' }
  /** A late event that would move a final state backwards: ignored and recorded. */
  | { effect: 'stale' }
  /** A final→final disagreement: do not overwrite blindly; ask Capa (Get KYC Details). */
  | { effect: 'conflict_check' };

const EVENT_TARGET: Record<'VERIFIED_USER' | 'REJECTED_KYC' | 'REVIEW_NEEDED_KYC', KycState> = {
  VERIFIED_USER: 'VERIFIED',
  REJECTED_KYC: 'REJECTED',
  REVIEW_NEEDED_KYC: 'REVIEW_NEEDED',
};

export function isFinal(s: KycState): boolean {
  return FINAL_STATES.includes(s);
}

export function decide(current: KycState, signal: KycSignal): Decision {
  switch (signal.kind) {
    case 'LINK_ISSUED':
      // A new link starts (or restarts, after a rejection) the customer's journey. While a
      // verification is under way or done, issuing a link does not rewrite the state.
      if (current === 'NOT_STARTED' || current === 'REJECTED') return { effect: 'apply', to: 'LINK_ISSUED' };
      return { effect: 'noop' };

    case 'LINK_EXPIRED':
      // Expiry is a flag on the link and the user, never a state change.
      return { effect: 'noop' };

    case 'WEBHOOK': {
      if (signal.event === 'CREATED_KYC') {
        if (current === 'NOT_STARTED' || current === 'LINK_ISSUED') return { effect: 'apply', to: 'IN_PROGRESS' };
        if (current === 'IN_PROGRESS') return { effect: 'noop' };
        // Late CREATED_KYC after an outcome: never undo a final state.
        return { effect: 'stale' };
      }
      const to = EVENT_TARGET[signal.event];
      if (current === to) return { effect: 'noop' };
      // Re-invited after this very outcome, and no CREATED_KYC since: most likely the old
      // verification's event arriving late (Capa retries), possibly a quick new attempt. Webhooks
      // carry no time, so ask Capa, whose details say which verification it is.
      if (current === 'LINK_ISSUED' && signal.relinkedFrom === to) return { effect: 'conflict_check' };
      if (!isFinal(current)) return { effect: 'apply', to };
      // Documented: REVIEW_NEEDED resolves to VERIFIED or REJECTED.
      if (current === 'REVIEW_NEEDED') return { effect: 'apply', to };
      // VERIFIED→anything or REJECTED→VERIFIED/REVIEW_NEEDED: either a late event from an older
      // verification or a real retry. Only Capa can tell.
      return { effect: 'conflict_check' };
    }

    case 'POLLED': {
      const truth = signal.state;
      if (truth === null) {
        // No KYC at Capa. Our pre-KYC states stand; a later state we hold came from a signed
        // webhook, so we keep it rather than erase evidence (recorded as a finding by the caller).
        return { effect: 'noop' };
      }
      // A re-invited customer (new link after an outcome) keeps LINK_ISSUED until the new
      // link is used: the old verification must not pull it back (refresh runs poll LINK_ISSUED).
      if (signal.beforeCurrentLink && current === 'LINK_ISSUED') return { effect: 'noop' };
      // Capa's details never mean "no link yet": those two states are ours alone.
      if (truth === current || truth === 'NOT_STARTED' || truth === 'LINK_ISSUED') return { effect: 'noop' };
      // VERIFIED is terminal: no revocation event exists; a poll must not demote it silently.
      if (current === 'VERIFIED' && !isFinal(truth)) return { effect: 'stale' };
      // The polled record is Capa's latest verification: it is the truth (this is how drift,
      // missed and conflicting events are settled).
      return { effect: 'apply', to: truth };
    }
  }
}

/**
 * Maps Get KYC Details' free-text `verificationResult` to our state. Capa publishes no enum
 * (reference §3.1, §7.4): known spellings are mapped, anything else returns `unknown` and is
 * never guessed into a final state.
 */
export function mapVerificationResult(raw: string | null | undefined): { state: KycState; known: true } | { state: null; known: false; raw: string } {
  const v = (raw ?? '').trim().toUpperCase().replace(/[\s-]+/g, '_');
  switch (v) {
    case 'VERIFIED':
    case 'APPROVED':
    case 'PASSED':
    case 'ACCEPTED':
      return { state: 'VERIFIED', known: true };
    case 'REJECTED':
    case 'DECLINED':
    case 'FAILED':
    case 'DENIED':
      return { state: 'REJECTED', known: true };
    case 'REVIEW_NEEDED':
    case 'NEEDS_REVIEW':
    case 'MANUAL_REVIEW':
    case 'IN_REVIEW':
    case 'REVIEW':
      return { state: 'REVIEW_NEEDED', known: true };
    case '':
    case 'PENDING':
    case 'IN_PROGRESS':
    case 'PROCESSING':
    case 'SUBMITTED':
    case 'NOT_COMPLETED':
      return { state: 'IN_PROGRESS', known: true };
    default:
      return { state: null, known: false, raw: raw ?? '' };
  }
}
