import type { Executor } from '../../db/client.js';
import { deleteSetting, getSetting, putSetting } from '../../db/repositories/settings.js';
import {
  ALERT_RULE_IDS,
  effectiveSettings,
  parseRuleOverrides,
  RuleOverrideSchema,
  type AlertRouting,
  type AlertRuleId,
  type RuleOverride,
  type RuleSettings,
} from '../../domain/alerts.js';
import type { Env } from '../../lib/config.js';

/**
 * The alert rules' settings in force: the defaults (domain/alerts.ts), then the environment
 * (OPS_BACKLOG_WARN for the backlog, ALERTS_RULES for anything), then what admins saved on
 * /alerts. Recipients: ALERTS_EMAIL_* unless an admin saved a list.
 */
export const ALERT_SETTING_KEYS = { rules: 'alerts.rules', routing: 'alerts.routing' } as const;

export type RuleOverrides = Partial<Record<AlertRuleId, RuleOverride>>;

export interface WebhookTarget {
  url: string;
  secret: string;
  format: 'json' | 'slack';
}

export interface AlertConfig {
  rules: Record<AlertRuleId, RuleSettings>;
  routing: AlertRouting;
  /** Where the routing came from: the environment, or an admin's change (who and when). */
  routingSetBy: { by: string | null; at: string } | null;
  rulesSetBy: { by: string | null; at: string } | null;
  /** The admins' overrides as stored (the /alerts form shows which values are their own). */
  adminOverrides: RuleOverrides;
  webhook: WebhookTarget | null;
}

/** The environment's layer. Throws naming ALERTS_RULES when it cannot be read (checked at start). */
export function envOverrides(env: Pick<Env, 'ALERTS_RULES' | 'OPS_BACKLOG_WARN'>): RuleOverrides {
  let fromRules: RuleOverrides;
  try {
    fromRules = parseRuleOverrides(env.ALERTS_RULES);
  } catch (err) {
    throw new Error(`ALERTS_RULES: ${(err as Error).message}`);
  }
  const backlog: RuleOverride = { params: { waiting: env.OPS_BACKLOG_WARN } };
  const merged = fromRules['queues.backlog'];
  return {
    ...fromRules,
    'queues.backlog': merged ? { ...merged, params: { ...backlog.params, ...merged.params } } : backlog,
  };
}

/** Refuses a bad ALERTS_RULES at process start, with the variable named. */
export function checkAlertEnv(env: Env): void {
  envOverrides(env);
}

export function webhookTarget(
  env: Pick<Env, 'ALERTS_WEBHOOK_URL' | 'ALERTS_WEBHOOK_SECRET' | 'ALERTS_WEBHOOK_FORMAT'>,
): WebhookTarget | null {
  if (!env.ALERTS_WEBHOOK_URL || !env.ALERTS_WEBHOOK_SECRET) return null;
  return { url: env.ALERTS_WEBHOOK_URL, secret: env.ALERTS_WEBHOOK_SECRET, format: env.ALERTS_WEBHOOK_FORMAT };
}

/** Stored admin overrides; anything unreadable (an older shape) is ignored rather than fatal. */
async function storedOverrides(db: Executor): Promise<{ value: RuleOverrides; at: string; by: string | null } | null> {
  const s = await getSetting<Record<string, unknown>>(db, ALERT_SETTING_KEYS.rules);
  if (!s || typeof s.value !== 'object' || s.value === null) return null;
  const value: RuleOverrides = {};
  for (const id of ALERT_RULE_IDS) {
    const parsed = RuleOverrideSchema.safeParse(s.value[id]);
    if (parsed.success) value[id] = parsed.data;
  }
  return { value, at: s.updatedAt, by: s.updatedBy };
}

export async function alertConfig(db: Executor, env: Env): Promise<AlertConfig> {
  const fromEnv = envOverrides(env);
  const stored = await storedOverrides(db);
  const rules = Object.fromEntries(ALERT_RULE_IDS.map((id) => [id, effectiveSettings(id, fromEnv[id], stored?.value[id])])) as Record<
    AlertRuleId,
    RuleSettings
  >;
  const routingSetting = await getSetting<AlertRouting>(db, ALERT_SETTING_KEYS.routing);
  const routing: AlertRouting =
    routingSetting && Array.isArray(routingSetting.value?.critical) && Array.isArray(routingSetting.value?.warning)
      ? { critical: routingSetting.value.critical.map(String), warning: routingSetting.value.warning.map(String) }
      : { critical: env.ALERTS_EMAIL_CRITICAL, warning: env.ALERTS_EMAIL_WARNING };
  return {
    rules,
    routing,
    routingSetBy: routingSetting ? { by: routingSetting.updatedBy, at: routingSetting.updatedAt } : null,
    rulesSetBy: stored ? { by: stored.by, at: stored.at } : null,
    adminOverrides: stored?.value ?? {},
    webhook: webhookTarget(env),
  };
}

/** The settings the environment alone gives (what "back to default" returns a rule to). */
export function baseSettings(env: Env): Record<AlertRuleId, RuleSettings> {
  const fromEnv = envOverrides(env);
  return Object.fromEntries(ALERT_RULE_IDS.map((id) => [id, effectiveSettings(id, fromEnv[id])])) as Record<AlertRuleId, RuleSettings>;
}

export async function saveRuleOverrides(db: Executor, value: RuleOverrides, by: string | null): Promise<void> {
  await putSetting(db, ALERT_SETTING_KEYS.rules, value, by);
}

export async function saveRouting(db: Executor, value: AlertRouting, by: string | null): Promise<void> {
  await putSetting(db, ALERT_SETTING_KEYS.routing, value, by);
}

/** Back to the environment's lists (ALERTS_EMAIL_CRITICAL, ALERTS_EMAIL_WARNING). */
export async function resetRouting(db: Executor): Promise<void> {
  await deleteSetting(db, ALERT_SETTING_KEYS.routing);
}
