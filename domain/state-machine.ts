import { FINAL_STATES, type KycState } from './kyc-states.js';

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
 *
 * After a re-invitation (a rejected customer gets a new link) the earlier verification can still
 * speak: its webhooks retried late, and Get KYC Details returning it until the customer submits
 * again. Only the verification's createdAt, against the re-invitation, tells them apart
 * (docs/decisions/004-state-machine-without-timestamps.md).
 */

/**
 * The customer's latest re-invitation: a new link that moved them from a final outcome (in
 * practice REJECTED) back to LINK_ISSUED. Capa's verifications created before it are the ones we
 * already acted on.
 */
export interface Reinvitation {
  /** The outcome the customer was re-invited from. */
  from: KycState;
  /** When the customer moved back to LINK_ISSUED (our clock, ISO 8601). */
  at: string;
}

export type KycSignal =
  | { kind: 'LINK_ISSUED' }
  | { kind: 'LINK_EXPIRED' }
  | {
      kind: 'WEBHOOK';
      event: 'CREATED_KYC' | 'VERIFIED_USER' | 'REJECTED_KYC' | 'REVIEW_NEEDED_KYC';
      /** The customer's latest re-invitation; null: never re-invited; absent: not looked up yet. */
      reinvitation?: Reinvitation | null;
    }
  | {
      kind: 'POLLED';
      state: KycState | null;
      /** The `createdAt` of the verification Capa reported (its latest), as Capa sent it. */
      verificationCreatedAt?: string | null;
      /** The customer's latest re-invitation; null: never re-invited; absent: not looked up yet. */
      reinvitation?: Reinvitation | null;
    };

export type Decision =
  /** Move to `to`. */
  | { effect: 'apply'; to: KycState }
  /**
   * Already there: nothing to change (duplicates land here). `before_reinvitation`: Capa's latest
   * verification is the one the customer was re-invited from (or older), so it is not news.
   */
  | { effect: 'noop'; because?: 'before_reinvitation' }
  /** A late event that would move a final state backwards: ignored and recorded. */
  | { effect: 'stale' }
  /**
   * Do not overwrite blindly; ask Capa (Get KYC Details). A final→final disagreement, or
   * (`reinvited`) an event that would move a re-invited customer and may be a retry of the
   * earlier verification's event.
   */
  | { effect: 'conflict_check'; because?: 'reinvited' };

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
      const d = decideWebhook(current, signal.event);
      // After a re-invitation any event may be the earlier verification's, retried late (Capa
      // retries for about 31 minutes, and a failed notification can be retried by hand much
      // later). Webhooks carry no time or id, so an event that would move a re-invited customer
      // is not applied: Capa's details, whose verification has a createdAt, decide instead.
      if (d.effect === 'apply' && signal.reinvitation) return { effect: 'conflict_check', because: 'reinvited' };
      return d;
    }

    case 'POLLED': {
      const truth = signal.state;
      if (truth === null) {
        // No KYC at Capa. Our pre-KYC states stand; a later state we hold came from a signed
        // webhook, so we keep it rather than erase evidence (recorded as a finding by the caller).
        return { effect: 'noop' };
      }
      // Capa's latest verification was created before we re-invited the customer: it is the
      // attempt we already acted on (Get KYC Details keeps returning it until the customer submits
      // again). Whatever state we hold now, it must not pull the customer back, nor start a second
      // retry programme. Only a different final outcome for it (Capa revised its decision) is news.
      if (
        signal.reinvitation &&
        predatesReinvitation(signal.verificationCreatedAt, signal.reinvitation) === true &&
        (truth === signal.reinvitation.from || !isFinal(truth))
      ) {
        return { effect: 'noop', because: 'before_reinvitation' };
      }
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

/** The documented table for one webhook, before any re-invitation is considered. */
function decideWebhook(current: KycState, event: Extract<KycSignal, { kind: 'WEBHOOK' }>['event']): Decision {
  if (event === 'CREATED_KYC') {
    if (current === 'NOT_STARTED' || current === 'LINK_ISSUED') return { effect: 'apply', to: 'IN_PROGRESS' };
    if (current === 'IN_PROGRESS') return { effect: 'noop' };
    // Late CREATED_KYC after an outcome: never undo a final state.
    return { effect: 'stale' };
  }
  const to = EVENT_TARGET[event];
  if (current === to) return { effect: 'noop' };
  if (!isFinal(current)) return { effect: 'apply', to };
  // Documented: REVIEW_NEEDED resolves to VERIFIED or REJECTED.
  if (current === 'REVIEW_NEEDED') return { effect: 'apply', to };
  // VERIFIED→anything or REJECTED→VERIFIED/REVIEW_NEEDED: either a late event from an older
  // verification or a real retry. Only Capa can tell.
  return { effect: 'conflict_check' };
}

/**
 * A Capa timestamp as epoch milliseconds: ISO 8601, or Capa's zone-less
 * `YYYY-MM-DD HH:MM:SS.mmm` (capa-api.md §2.6), read as UTC rather than as the server's local
 * time. NaN when absent or unreadable.
 */
export function capaInstant(raw: string | null | undefined): number {
  if (typeof raw !== 'string') return NaN;
  const v = raw.trim();
  const zoneless = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)$/.exec(v);
  return Date.parse(zoneless ? `${zoneless[1]}T${zoneless[2]}Z` : v);
}

/**
 * Whether a verification created at `verificationCreatedAt` (Capa's clock) predates the
 * re-invitation: at or before it counts as before (the verification we re-invited from). Null
 * when the verification has no readable time.
 */
export function predatesReinvitation(verificationCreatedAt: string | null | undefined, reinvitation: Reinvitation): boolean | null {
  const t = capaInstant(verificationCreatedAt);
  if (!Number.isFinite(t)) return null;
  return t <= Date.parse(reinvitation.at);
}

/**
 * Whether a move to REJECTED repeats the rejection the customer was already re-invited from (an
 * echo: no new retry programme, no new e-mail, no new link). It does when Capa's verification
 * predates the latest re-invitation, whatever states were shown in between. Without a readable
 * verification time, only a move straight from LINK_ISSUED is taken for the echo: nothing Capa
 * reported since the re-invitation shows a new attempt (never a second programme by mistake),
 * while a rejection after IN_PROGRESS or REVIEW_NEEDED, which only Capa's details can set after
 * a re-invitation, is a new one.
 */
export function repeatsReinvitedRejection(e: {
  from: KycState;
  to: KycState;
  reinvitation: Reinvitation | null | undefined;
  verificationCreatedAt: string | null | undefined;
}): boolean {
  if (e.to !== 'REJECTED' || !e.reinvitation) return false;
  const before = predatesReinvitation(e.verificationCreatedAt, e.reinvitation);
  if (before !== null) return before;
  return e.from === 'LINK_ISSUED';
}

/**
 * Maps Get KYC Details' free-text `verificationResult` to our state. Capa publishes no enum
 * (reference §3.1, §7.4): known spellings are mapped, anything else returns `unknown` and is
 * never guessed into a final state.
 */
export function mapVerificationResult(
  raw: string | null | undefined,
): { state: KycState; known: true } | { state: null; known: false; raw: string } {
  const v = (raw ?? '')
    .trim()
    .toUpperCase()
    .replace(/[\s-]+/g, '_');
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
