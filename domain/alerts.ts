import { z } from 'zod';

/**
 * Alerts: the rules KYC Desk watches, their settings, and the one decision that moves an alert
 * between states. Pure — the evaluator (jobs/alerts/) measures, this module decides, so flap
 * protection is tested with a clock passed in.
 *
 * An alert belongs to a rule and lives from the moment the rule's condition is first seen true:
 *   pending ── held for `forSeconds` ──► firing ──(operator)──► acknowledged
 *      │                                  │                         │
 *      └─ condition clears: dropped       └── condition false for `resolveSeconds` ──► resolved
 * A pending alert that clears never fired and leaves no history. A firing or acknowledged alert
 * whose condition comes back inside the resolve delay keeps firing: no second notification.
 */

export const ALERT_RULE_IDS = [
  'webhooks.silent',
  'webhooks.signature_failures',
  'capa.errors',
  'imports.paused',
  'queues.backlog',
  'workers.none',
  'email.failures',
  'review.sla_breached',
  'drift.spike',
] as const;
export type AlertRuleId = (typeof ALERT_RULE_IDS)[number];

export const SEVERITIES = ['critical', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ALERT_STATES = ['pending', 'firing', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];
/** States of an alert that is not over yet (one per rule at most). */
export const OPEN_STATES: readonly AlertState[] = ['pending', 'firing', 'acknowledged'];

export const isAlertRuleId = (s: string): s is AlertRuleId => (ALERT_RULE_IDS as readonly string[]).includes(s);

/**
 * Who evaluates a rule. `worker`: the scheduled evaluation job. `web`: the web process — a rule
 * about the absence of workers cannot depend on a worker to notice it.
 */
export type Evaluator = 'worker' | 'web';

export interface RuleDefinition {
  id: AlertRuleId;
  evaluator: Evaluator;
  /** The console page that explains what the alert is about. */
  page: string;
  /** Default settings; an admin may change each of them on /alerts. */
  defaults: RuleSettings;
}

export interface RuleSettings {
  enabled: boolean;
  severity: Severity;
  /** The condition must hold this long before the alert fires (pending until then). */
  forSeconds: number;
  /** The condition must stay false this long before a firing alert resolves. */
  resolveSeconds: number;
  /** The rule's own thresholds and windows; durations in seconds, shares in percent. */
  params: Record<string, number>;
}

const s = (enabled: boolean, severity: Severity, forSeconds: number, resolveSeconds: number, params: Record<string, number> = {}) => ({
  enabled,
  severity,
  forSeconds,
  resolveSeconds,
  params,
});

/**
 * The rules and their defaults. Windows are long enough that ordinary quiet hours do not fire
 * (no webhook for an hour with links out is already unusual), for-durations ride out a single bad
 * scrape or a worker restart, and resolve delays are longer than the import outage probe (60 s)
 * so a paused import that resumes to probe and pauses again does not resolve and fire again.
 */
export const RULES: Record<AlertRuleId, RuleDefinition> = {
  'webhooks.silent': {
    id: 'webhooks.silent',
    evaluator: 'worker',
    page: '/webhooks?verdict=valid',
    defaults: s(true, 'critical', 0, 300, { windowSeconds: 3600, minCustomers: 1 }),
  },
  'webhooks.signature_failures': {
    id: 'webhooks.signature_failures',
    evaluator: 'worker',
    page: '/webhooks?verdict=mismatch',
    defaults: s(true, 'critical', 0, 300, { windowSeconds: 3600, percent: 10, minFailures: 3 }),
  },
  'capa.errors': {
    id: 'capa.errors',
    evaluator: 'worker',
    page: '/queues',
    defaults: s(true, 'critical', 120, 300, { windowSeconds: 600, percent: 20, minCalls: 10 }),
  },
  'imports.paused': { id: 'imports.paused', evaluator: 'worker', page: '/imports', defaults: s(true, 'warning', 0, 300) },
  'queues.backlog': {
    id: 'queues.backlog',
    evaluator: 'worker',
    page: '/queues',
    defaults: s(true, 'warning', 300, 300, { waiting: 1000, oldestSeconds: 900 }),
  },
  'workers.none': { id: 'workers.none', evaluator: 'web', page: '/queues', defaults: s(true, 'critical', 60, 60) },
  'email.failures': {
    id: 'email.failures',
    evaluator: 'worker',
    page: '/notifications?status=failed',
    defaults: s(true, 'warning', 0, 600, { windowSeconds: 3600, percent: 20, minMessages: 10, bounces: 50 }),
  },
  'review.sla_breached': {
    id: 'review.sla_breached',
    evaluator: 'worker',
    page: '/review?breached=1',
    defaults: s(true, 'warning', 0, 300, { cases: 1 }),
  },
  'drift.spike': {
    id: 'drift.spike',
    evaluator: 'worker',
    page: '/drift',
    defaults: s(true, 'warning', 0, 900, { windowSeconds: 3600, minCorrections: 5, factor: 3, baselineDays: 7 }),
  },
};

/** Bounds of each parameter (what an admin may set): [min, max]. */
export const PARAM_BOUNDS: Record<string, [number, number]> = {
  windowSeconds: [1, 30 * 86_400],
  minCustomers: [1, 1_000_000],
  percent: [0.01, 100],
  minFailures: [1, 1_000_000],
  minCalls: [1, 1_000_000],
  waiting: [1, 100_000_000],
  oldestSeconds: [1, 30 * 86_400],
  minMessages: [1, 1_000_000],
  bounces: [1, 1_000_000],
  cases: [1, 1_000_000],
  minCorrections: [1, 1_000_000],
  factor: [1, 1000],
  baselineDays: [1, 90],
};
export const DURATION_MAX_SECONDS = 7 * 86_400;

/** An admin's settings for one rule, as stored (every field optional: unset = the default). */
export const RuleOverrideSchema = z
  .object({
    enabled: z.boolean().optional(),
    severity: z.enum(SEVERITIES).optional(),
    forSeconds: z.number().int().min(0).max(DURATION_MAX_SECONDS).optional(),
    resolveSeconds: z.number().int().min(0).max(DURATION_MAX_SECONDS).optional(),
    params: z.record(z.number().finite()).optional(),
  })
  .strict();
export type RuleOverride = z.infer<typeof RuleOverrideSchema>;

/** A problem with a setting, as a code and values (the console words it). */
export interface SettingProblem {
  rule: AlertRuleId;
  field: string;
  code: 'unknown_param' | 'out_of_range';
  min?: number;
  max?: number;
}

/** Checks one rule's override: parameters the rule has, within their bounds. */
export function checkOverride(rule: AlertRuleId, o: RuleOverride): SettingProblem[] {
  const out: SettingProblem[] = [];
  for (const [k, v] of Object.entries(o.params ?? {})) {
    if (!(k in RULES[rule].defaults.params)) {
      out.push({ rule, field: k, code: 'unknown_param' });
      continue;
    }
    const [min, max] = PARAM_BOUNDS[k] ?? [0, Number.MAX_SAFE_INTEGER];
    if (v < min || v > max) out.push({ rule, field: k, code: 'out_of_range', min, max });
  }
  return out;
}

/** Defaults ← each layer of overrides in turn (environment, then the admins' settings). */
export function effectiveSettings(rule: AlertRuleId, ...layers: Array<RuleOverride | undefined>): RuleSettings {
  const d = RULES[rule].defaults;
  const out: RuleSettings = { ...d, params: { ...d.params } };
  for (const o of layers) {
    if (!o) continue;
    if (o.enabled !== undefined) out.enabled = o.enabled;
    if (o.severity !== undefined) out.severity = o.severity;
    if (o.forSeconds !== undefined) out.forSeconds = o.forSeconds;
    if (o.resolveSeconds !== undefined) out.resolveSeconds = o.resolveSeconds;
    for (const [k, v] of Object.entries(o.params ?? {})) if (k in out.params) out.params[k] = v;
  }
  return out;
}

/**
 * ALERTS_RULES: overrides from the environment, `rule.field=value` separated by commas, e.g.
 * `workers.none.forSeconds=5,webhooks.silent.windowSeconds=30,drift.spike.enabled=false`.
 * Fields: enabled, severity, forSeconds, resolveSeconds, or one of the rule's parameters.
 * Throws with a message naming the bad entry.
 */
export function parseRuleOverrides(text: string | undefined): Partial<Record<AlertRuleId, RuleOverride>> {
  const out: Partial<Record<AlertRuleId, RuleOverride>> = {};
  for (const raw of (text ?? '').split(',')) {
    const entry = raw.trim();
    if (!entry) continue;
    const m = /^([a-z_]+\.[a-z_]+)\.([A-Za-z]+)=(.+)$/.exec(entry);
    if (!m) throw new Error(`"${entry}" is not rule.field=value (e.g. workers.none.forSeconds=30)`);
    const [, rule, field, value] = m as unknown as [string, string, string, string];
    if (!isAlertRuleId(rule)) throw new Error(`"${entry}": no rule ${rule} (rules: ${ALERT_RULE_IDS.join(', ')})`);
    const o: RuleOverride = (out[rule] ??= {});
    if (field === 'enabled') {
      if (value !== 'true' && value !== 'false') throw new Error(`"${entry}": enabled is true or false`);
      o.enabled = value === 'true';
    } else if (field === 'severity') {
      if (!(SEVERITIES as readonly string[]).includes(value)) throw new Error(`"${entry}": severity is ${SEVERITIES.join(' or ')}`);
      o.severity = value as Severity;
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`"${entry}": ${field} must be a number ≥ 0`);
      if (field === 'forSeconds' || field === 'resolveSeconds') o[field] = Math.round(n);
      else if (field in RULES[rule].defaults.params) (o.params ??= {})[field] = n;
      else
        throw new Error(
          `"${entry}": ${rule} has no setting ${field} (settings: enabled, severity, forSeconds, resolveSeconds${Object.keys(
            RULES[rule].defaults.params,
          )
            .map((p) => `, ${p}`)
            .join('')})`,
        );
    }
  }
  for (const [rule, o] of Object.entries(out) as Array<[AlertRuleId, RuleOverride]>) {
    const bad = checkOverride(rule, o)[0];
    if (bad) throw new Error(`${rule}.${bad.field} must be between ${bad.min} and ${bad.max}`);
  }
  return out;
}

// ------------------------------------------------------------------ the decision

/** What the evaluator knows of a rule's open alert. */
export interface OpenAlert {
  /** A resolved alert counts as none open. */
  state: AlertState;
  /** When the condition was first seen true (ISO). */
  pendingSince: string;
  /** When the condition was first seen false again while firing/acknowledged (ISO), else null. */
  resolvingSince: string | null;
}

export type AlertDecision =
  /** Nothing open and nothing to open. */
  | { do: 'none' }
  /** Condition true, nothing open: open a pending alert (it fires at once when forSeconds is 0). */
  | { do: 'open' }
  /** Pending long enough: fire (and notify). */
  | { do: 'fire' }
  /** Still pending, or still firing/acknowledged: refresh the measurement; `clearResolving` when the condition came back. */
  | { do: 'hold'; clearResolving: boolean }
  /** A pending alert whose condition cleared before it fired: it never happened. */
  | { do: 'drop' }
  /** Condition false while firing/acknowledged: the resolve delay starts now. */
  | { do: 'start_resolving' }
  /** Condition false for the whole resolve delay: resolved. */
  | { do: 'resolve' };

/**
 * The one rule for moving an alert. `active`: the condition holds now; null when it could not be
 * measured (a source did not answer) — nothing moves on an unknown.
 */
export function decide(
  current: OpenAlert | null,
  active: boolean | null,
  settings: Pick<RuleSettings, 'forSeconds' | 'resolveSeconds'>,
  now: number,
): AlertDecision {
  const open = current?.state === 'resolved' ? null : current;
  if (active === null) return open ? { do: 'hold', clearResolving: false } : { do: 'none' };
  if (!open) return active ? { do: 'open' } : { do: 'none' };
  if (open.state === 'pending') {
    if (!active) return { do: 'drop' };
    return now - Date.parse(open.pendingSince) >= settings.forSeconds * 1000 ? { do: 'fire' } : { do: 'hold', clearResolving: false };
  }
  if (active) return { do: 'hold', clearResolving: open.resolvingSince !== null };
  if (open.resolvingSince === null) return settings.resolveSeconds <= 0 ? { do: 'resolve' } : { do: 'start_resolving' };
  return now - Date.parse(open.resolvingSince) >= settings.resolveSeconds * 1000
    ? { do: 'resolve' }
    : { do: 'hold', clearResolving: false };
}

// ------------------------------------------------------------------ what a measurement says

/**
 * One evaluation of a rule: whether the condition holds, the figure compared with the threshold,
 * and the values the console and the messages word it with (`alerts:summary.<rule>`).
 */
export interface Measurement {
  active: boolean;
  value: number;
  values: Record<string, string | number | null>;
  /** A more precise page than the rule's own (e.g. the one paused import). */
  page?: string;
}

/** Recipients of alert messages, per severity (e-mail addresses). */
export interface AlertRouting {
  critical: string[];
  warning: string[];
}
