import { KYC_STATES, type KycState } from './kyc-states.js';

/**
 * The retention policy: whole years a customer's personal data is kept after their last KYC state
 * change, per state; 0 keeps it for ever. Measured from the last change because a customer who
 * moves (a rejected one resubmits, a verified one is re-checked) starts a new period.
 */
export type RetentionPolicy = Record<KycState, number>;

/** The policy from the environment's RETENTION_<STATE>_YEARS variables. */
export function retentionPolicy(env: { [K in `RETENTION_${KycState}_YEARS`]: number }): RetentionPolicy {
  return Object.fromEntries(KYC_STATES.map((s) => [s, env[`RETENTION_${s}_YEARS`]])) as RetentionPolicy;
}

/**
 * The moment before which a last state change is past `years` of retention, counted in calendar
 * years (a change on 29 February is due on 1 March of a common year).
 */
export function retentionCutoff(years: number, now: number): string {
  const d = new Date(now);
  d.setUTCFullYear(d.getUTCFullYear() - years);
  return d.toISOString();
}

/** The states the policy erases, with their cut-off at `now`, in the order of KYC_STATES. */
export function dueStates(policy: RetentionPolicy, now: number): Array<{ state: KycState; years: number; before: string }> {
  return KYC_STATES.filter((s) => policy[s] > 0).map((s) => ({ state: s, years: policy[s], before: retentionCutoff(policy[s], now) }));
}
