import type { KycState } from './kyc-states.js';

/** The statuses of a review case (db/schema.ts stores them). */
export const CASE_STATUSES = ['open', 'waiting_customer', 'waiting_capa', 'resolved'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

/**
 * The review SLA: whose move a case waits on (the customer, Capa or us), how long that wait and
 * each party's total have run, and whether the wait is past its target. Pure: the queue, the case
 * page and the alert on breached cases feed it the history they read.
 */

export const WAITING_ON = ['customer', 'capa', 'us'] as const;
export type WaitingOn = (typeof WAITING_ON)[number];

export interface SlaTargets {
  customerMs: number;
  capaMs: number;
  usMs: number;
}

export const slaTargetsFromHours = (h: { customer: number; capa: number; us: number }): SlaTargets => ({
  customerMs: h.customer * 3_600_000,
  capaMs: h.capa * 3_600_000,
  usMs: h.us * 3_600_000,
});

export interface SlaInput {
  /** When the current case began (the customer entered review, or an operator opened it). */
  openedAt: string;
  currentState: KycState;
  currentStateAt: string;
  /** The customer's state history (any order; all of it — the state at openedAt is read from it). */
  stateChanges: Array<{ at: string; toState: KycState }>;
  /** Case status changes since openedAt (the case is `open` at openedAt). */
  statusChanges: Array<{ at: string; status: CaseStatus }>;
}

export interface SlaClock {
  waitingOn: WaitingOn | null;
  /** When the current wait began. */
  since: string | null;
  currentMs: number;
  targetMs: number | null;
  breached: boolean;
  /** Time attributed to each party since the case opened. */
  totals: Record<WaitingOn, number>;
}

/**
 * Who we are waiting on at one moment. The customer's state speaks first (a link sent but not
 * started waits on the customer; a submission without a result waits on Capa); in a final state
 * the operator's "waiting on …" status counts only if it was set after the state last changed —
 * an answer that arrived since means the case is back with us.
 */
export function waitingOnAt(state: KycState, stateAt: string, status: CaseStatus, statusAt: string): WaitingOn | null {
  if (status === 'resolved') return null;
  if (state === 'NOT_STARTED' || state === 'LINK_ISSUED') return 'customer';
  if (state === 'IN_PROGRESS') return 'capa';
  if (status === 'waiting_customer' && statusAt >= stateAt) return 'customer';
  if (status === 'waiting_capa' && statusAt >= stateAt) return 'capa';
  return 'us';
}

export function slaClock(input: SlaInput, now: number, targets: SlaTargets): SlaClock {
  const states = [...input.stateChanges].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  // Rows written straight into a state (imports, fixtures) have no history: the current state counts from currentStateAt.
  const last = states[states.length - 1];
  if (!last || last.toState !== input.currentState) states.push({ at: input.currentStateAt, toState: input.currentState });
  const statuses = input.statusChanges.filter((s) => s.at >= input.openedAt).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));

  const points = [...new Set([input.openedAt, ...states.map((s) => s.at).filter((a) => a > input.openedAt), ...statuses.map((s) => s.at)])]
    .filter((a) => Date.parse(a) <= now)
    .sort();
  const stateAt = (t: string) => {
    let cur: { at: string; toState: KycState } = { at: input.openedAt, toState: states[0]?.toState ?? input.currentState };
    for (const s of states) if (s.at <= t) cur = s;
    return cur;
  };
  const statusAt = (t: string) => {
    let cur: { at: string; status: CaseStatus } = { at: input.openedAt, status: 'open' };
    for (const s of statuses) if (s.at <= t) cur = s;
    return cur;
  };

  const totals: Record<WaitingOn, number> = { customer: 0, capa: 0, us: 0 };
  let current: WaitingOn | null = null;
  let since: string | null = null;
  for (let i = 0; i < points.length; i++) {
    const t = points[i]!;
    const st = stateAt(t);
    const cs = statusAt(t);
    const party = waitingOnAt(st.toState, st.at, cs.status, cs.at);
    const end = i + 1 < points.length ? Date.parse(points[i + 1]!) : now;
    if (party) totals[party] += Math.max(0, end - Date.parse(t));
    if (party !== current) {
      current = party;
      since = party ? t : null;
    }
  }
  const targetMs = current ? { customer: targets.customerMs, capa: targets.capaMs, us: targets.usMs }[current] : null;
  const currentMs = since ? Math.max(0, now - Date.parse(since)) : 0;
  return { waitingOn: current, since, currentMs, targetMs, breached: targetMs !== null && currentMs > targetMs, totals };
}
