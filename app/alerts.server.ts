import { z } from 'zod';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import {
  acknowledge,
  alertHistory,
  alertMessages,
  endSilence,
  eventsFor,
  getAlert,
  getSilence,
  insertSilence,
  openAlerts,
  openCounts,
  recentSilences,
  recordEvent,
  ruleStates,
  silencesByIds,
  type Actor,
} from '../db/repositories/alerts.js';
import type { Alert, AlertEvent, AlertSilence } from '../db/schema.js';
import {
  ALERT_RULE_IDS,
  checkOverride,
  DURATION_MAX_SECONDS,
  isAlertRuleId,
  PARAM_BOUNDS,
  RULES,
  SEVERITIES,
  type AlertRuleId,
  type RuleOverride,
  type RuleSettings,
} from '../domain/alerts.js';
import { checkEmail } from '../domain/email.js';
import { alertConfig, baseSettings, resetRouting, saveRouting, saveRuleOverrides } from '../jobs/alerts/config.js';
import { evaluateAlerts, webhookAddress } from '../jobs/alerts/engine.js';
import { ruleSummary, ruleTitle, voice, type Voice } from '../jobs/alerts/messages.js';
import { isLanguage } from '../lib/locales.js';
import { isoIn, nowIso } from '../lib/time.js';
import type { ActionResult } from './action-result';
import { auditAction, roleAtLeast, type SignedIn } from './auth.server';
import { i18nFor } from './i18n.server';
import { pageCount, pageNumber } from './list-params.server';
import { services } from './services.server';

/**
 * The alerts feature's facade: /alerts (open alerts first, silences, rules and their thresholds,
 * recipients, history) and the header's badge. What an alert says (titles, summaries) comes from
 * the alert catalogues (jobs/alerts/locales), worded here in the reader's language and time zone,
 * so the page and the e-mail say the same thing. Viewers see; compliance acknowledges and
 * silences; admins change thresholds and recipients. Every change is audited.
 */

// ------------------------------------------------------------------ the badge

export interface AlertBadgeData {
  firing: number;
  critical: number;
  acknowledged: number;
}

/** Open alerts for the header (one grouped read on an indexed column). */
export async function alertBadge(): Promise<AlertBadgeData> {
  const { db } = await services();
  const out: AlertBadgeData = { firing: 0, critical: 0, acknowledged: 0 };
  for (const r of await openCounts(db)) {
    if (r.state === 'firing') {
      out.firing += r.n;
      if (r.severity === 'critical') out.critical += r.n;
    } else if (r.state === 'acknowledged') out.acknowledged += r.n;
  }
  return out;
}

// ------------------------------------------------------------------ the page

const HISTORY_PAGE = 25;
const parse = (s: string | null): Record<string, unknown> => {
  try {
    return s ? (JSON.parse(s) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};

/**
 * The web process evaluates the rule about missing workers every ALERTS_EVERY_SECONDS; a page
 * served by a process without that timer (or opened between two rounds) evaluates it once more
 * when the last evaluation is older than a period, so the page never shows a stale "all well".
 */
async function refreshWebRules(): Promise<void> {
  const s = await services();
  const last = (await ruleStates(s.db)).find((r) => r.ruleId === 'workers.none')?.evaluatedAt;
  if (last && Date.now() - Date.parse(last) < s.env.ALERTS_EVERY_SECONDS * 1000) return;
  await evaluateAlerts({ db: s.db, queues: s.queues, env: s.env, logger: s.logger }, { evaluator: 'web' }).catch((err) =>
    s.logger.warn({ err: (err as Error).message }, 'could not evaluate the web process alert rules'),
  );
}

function silenceView(s: AlertSilence, now: string) {
  return {
    id: s.id,
    ruleId: s.ruleId,
    reason: s.reason,
    startsAt: s.startsAt,
    endsAt: s.endedAt ?? s.endsAt,
    active: !s.endedAt && s.endsAt > now && s.startsAt <= now,
    endedEarly: Boolean(s.endedAt),
    by: s.createdByName,
    endedBy: s.endedByName,
  };
}
export type SilenceView = ReturnType<typeof silenceView>;

function eventView(e: AlertEvent) {
  const d = parse(e.detail);
  const recipients = Array.isArray(d.recipients) ? (d.recipients as unknown[]).length : null;
  return {
    id: e.id,
    at: e.at,
    kind: e.kind,
    actor: e.actor,
    reason: typeof d.reason === 'string' ? d.reason : null,
    message: typeof d.kind === 'string' ? d.kind : null,
    recipients,
  };
}

function alertView(
  a: Alert,
  v: Voice,
  ctx: {
    events: Map<string, AlertEvent[]>;
    messages: Map<string, Awaited<ReturnType<typeof alertMessages>>>;
    silences: Map<string, AlertSilence>;
    now: string;
  },
) {
  const settings = parse(a.settings) as Partial<RuleSettings>;
  const silence = a.silenceId ? ctx.silences.get(a.silenceId) : undefined;
  return {
    id: a.id,
    ruleId: a.ruleId,
    title: ruleTitle(a.ruleId, v),
    summary: ruleSummary(a.ruleId, parse(a.measure), v),
    state: a.state,
    severity: a.severity,
    pendingSince: a.pendingSince,
    firedAt: a.firedAt,
    fireAt:
      a.state === 'pending' && typeof settings.forSeconds === 'number'
        ? new Date(Date.parse(a.pendingSince) + settings.forSeconds * 1000).toISOString()
        : null,
    acknowledgedAt: a.acknowledgedAt,
    acknowledgedBy: a.acknowledgedByName,
    ackReason: a.ackReason,
    resolvingSince: a.resolvingSince,
    resolveAt:
      a.resolvingSince && typeof settings.resolveSeconds === 'number'
        ? new Date(Date.parse(a.resolvingSince) + settings.resolveSeconds * 1000).toISOString()
        : null,
    resolvedAt: a.resolvedAt,
    resolvedReason: a.resolvedReason,
    value: a.value,
    peakValue: a.peakValue,
    page: a.page,
    notifiedAt: a.notifiedAt,
    silence: silence ? silenceView(silence, ctx.now) : null,
    messages: (ctx.messages.get(a.id) ?? []).map((m) => ({
      id: m.id,
      kind: m.kind,
      channel: m.channel,
      address: m.address,
      status: m.status,
      attempts: m.attempts,
      problem: m.failureReason ?? m.lastError,
    })),
    events: (ctx.events.get(a.id) ?? []).map(eventView),
  };
}
export type AlertView = ReturnType<typeof alertView>;

const SEVERITY_RANK = { critical: 0, warning: 1 } as const;
const STATE_RANK = { firing: 0, acknowledged: 1, pending: 2, resolved: 3 } as const;

export async function alertsPageData(request: Request, who: SignedIn, sp: URLSearchParams) {
  await refreshWebRules();
  const { db, env } = await services();
  const { locale, timeZone } = await i18nFor(request, 'alerts');
  const v = voice(isLanguage(locale) ? locale : env.DEFAULT_LOCALE, timeZone);
  const now = nowIso();
  const cfg = await alertConfig(db, env);
  const base = baseSettings(env);

  const ruleFilter = sp.get('rule');
  const rule = ruleFilter && isAlertRuleId(ruleFilter) ? ruleFilter : null;
  const page = pageNumber(sp.get('page'));
  const open = (await openAlerts(db)).sort(
    (x, y) =>
      STATE_RANK[x.state] - STATE_RANK[y.state] ||
      SEVERITY_RANK[x.severity] - SEVERITY_RANK[y.severity] ||
      (x.firedAt ?? x.pendingSince).localeCompare(y.firedAt ?? y.pendingSince),
  );
  const history = await alertHistory(db, { rule, limit: HISTORY_PAGE, offset: (page - 1) * HISTORY_PAGE });
  const wanted = sp.get('alert')?.slice(0, 100) ?? null;
  const selected = wanted && !open.some((a) => a.id === wanted) ? ((await getAlert(db, wanted)) ?? null) : null;

  const shown = [...open, ...history.rows, ...(selected ? [selected] : [])];
  const ids = [...new Set(shown.map((a) => a.id))];
  const events = new Map<string, AlertEvent[]>();
  for (const e of await eventsFor(db, ids)) (events.get(e.alertId) ?? events.set(e.alertId, []).get(e.alertId)!).push(e);
  const messages = new Map<string, Awaited<ReturnType<typeof alertMessages>>>();
  for (const m of await alertMessages(db, ids)) (messages.get(m.alertId!) ?? messages.set(m.alertId!, []).get(m.alertId!)!).push(m);
  const recent = await recentSilences(db, now, new Date(Date.now() - 7 * 86_400_000).toISOString());
  const referenced = await silencesByIds(
    db,
    shown.map((a) => a.silenceId).filter((x): x is string => Boolean(x) && !recent.some((s) => s.id === x)),
  );
  const silences = new Map([...recent, ...referenced].map((s) => [s.id, s]));
  const ctx = { events, messages, silences, now };

  const states = new Map((await ruleStates(db)).map((s) => [s.ruleId, s]));
  const rules = ALERT_RULE_IDS.map((id) => {
    const s = cfg.rules[id];
    const st = states.get(id);
    const active = recent.find((x) => x.ruleId === id && !x.endedAt && x.endsAt > now && x.startsAt <= now);
    const own = cfg.adminOverrides[id] ?? {};
    return {
      id,
      title: ruleTitle(id, v),
      page: RULES[id].page,
      evaluator: RULES[id].evaluator,
      enabled: s.enabled,
      severity: s.severity,
      forSeconds: s.forSeconds,
      resolveSeconds: s.resolveSeconds,
      params: Object.entries(s.params).map(([name, value]) => ({
        name,
        value,
        base: base[id].params[name] ?? value,
        min: PARAM_BOUNDS[name]?.[0] ?? 0,
        max: PARAM_BOUNDS[name]?.[1] ?? Number.MAX_SAFE_INTEGER,
      })),
      base: {
        enabled: base[id].enabled,
        severity: base[id].severity,
        forSeconds: base[id].forSeconds,
        resolveSeconds: base[id].resolveSeconds,
      },
      changedByAdmin: Object.keys(own).length > 0,
      evaluatedAt: st?.evaluatedAt ?? null,
      error: st?.error ?? null,
      active: st?.measure?.active ?? null,
      now: st?.measure ? ruleSummary(id, st.measure.values, v) : null,
      silencedUntil: active?.endsAt ?? null,
    };
  });

  const counts = {
    firing: open.filter((a) => a.state === 'firing').length,
    acknowledged: open.filter((a) => a.state === 'acknowledged').length,
  };
  return {
    now,
    canAct: roleAtLeast(who.operator.role, 'compliance'),
    canEdit: roleAtLeast(who.operator.role, 'admin'),
    counts,
    open: open.map((a) => alertView(a, v, ctx)),
    selected: selected ? alertView(selected, v, ctx) : null,
    history: {
      rows: history.rows.map((a) => alertView(a, v, ctx)),
      total: history.total,
      page,
      pages: pageCount(history.total, HISTORY_PAGE),
      rule,
    },
    silences: recent.map((s) => silenceView(s, now)),
    rules,
    ruleTitles: Object.fromEntries(ALERT_RULE_IDS.map((id) => [id, ruleTitle(id, v)])) as Record<AlertRuleId, string>,
    routing: {
      critical: cfg.routing.critical,
      warning: cfg.routing.warning,
      fromEnv: !cfg.routingSetBy,
      setAt: cfg.routingSetBy?.at ?? null,
    },
    webhook: cfg.webhook ? { address: webhookAddress(cfg.webhook.url), format: cfg.webhook.format } : null,
    everySeconds: env.ALERTS_EVERY_SECONDS,
    silenceDurations: SILENCE_MINUTES,
  };
}

// ------------------------------------------------------------------ actions

/** How long a silence may be asked for (minutes), as the form offers them. */
export const SILENCE_MINUTES = [30, 60, 120, 240, 480, 1440, 4320, 10080] as const;

const reason = z
  .string({ required_error: 'alerts:errors.reason_missing' })
  .trim()
  .min(3, 'alerts:errors.reason_missing')
  .max(500, 'alerts:errors.reason_too_long');

const ActionSchema = z.discriminatedUnion('intent', [
  z.object({ intent: z.literal('acknowledge'), alertId: z.string().min(1).max(100), reason }),
  z.object({
    intent: z.literal('silence'),
    ruleId: z.string().refine(isAlertRuleId, 'alerts:errors.rule_unknown'),
    minutes: z.coerce.number().refine((n) => (SILENCE_MINUTES as readonly number[]).includes(n), 'alerts:errors.duration_invalid'),
    reason,
  }),
  z.object({ intent: z.literal('end-silence'), silenceId: z.string().min(1).max(100) }),
  z.object({ intent: z.literal('save-rule'), ruleId: z.string().refine(isAlertRuleId, 'alerts:errors.rule_unknown') }).passthrough(),
  z.object({ intent: z.literal('reset-rule'), ruleId: z.string().refine(isAlertRuleId, 'alerts:errors.rule_unknown') }),
  z.object({
    intent: z.literal('save-recipients'),
    critical: z.string().max(10_000).default(''),
    warning: z.string().max(10_000).default(''),
  }),
  z.object({ intent: z.literal('reset-recipients') }),
]);

/** `errors`: a message code per field; `formValues` refill the form that failed. */
export type AlertsOutcome = ActionResult & { errors?: Record<string, string>; formValues?: Record<string, string>; form?: string };

const ADMIN_INTENTS = new Set(['save-rule', 'reset-rule', 'save-recipients', 'reset-recipients']);

const actorOf = (who: SignedIn): Actor => ({ operatorId: who.operator.id, name: who.operator.email });

/** Thrown for an intent the operator's role does not allow: the route answers 403. */
export class AlertsForbidden extends Error {}

export async function alertsAction(request: Request, who: SignedIn, form: FormData): Promise<AlertsOutcome> {
  const { db, env } = await services();
  const values = Object.fromEntries([...form.entries()].filter(([k, v]) => k !== 'csrf' && typeof v === 'string')) as Record<
    string,
    string
  >;
  const parsed = ActionSchema.safeParse(values);
  if (!parsed.success) {
    const errors: Record<string, string> = {};
    for (const i of parsed.error.issues)
      errors[String(i.path[0] ?? 'form')] ??= i.message.includes(':') ? i.message : 'alerts:errors.invalid';
    return { tone: 'error', code: 'alerts:messages.check_form', errors, formValues: values, form: values.intent ?? '' };
  }
  const input = parsed.data;
  if (ADMIN_INTENTS.has(input.intent) && !roleAtLeast(who.operator.role, 'admin')) {
    await auditAction(request, who, {
      action: AUDIT_ACTIONS.accessDenied,
      targetType: 'route',
      targetId: `POST /alerts (${input.intent})`,
      outcome: 'denied',
      detail: { reason: 'admins only' },
    });
    throw new AlertsForbidden(input.intent);
  }
  const by = actorOf(who);

  switch (input.intent) {
    case 'acknowledge': {
      const a = await getAlert(db, input.alertId);
      if (!a) return { tone: 'error', code: 'alerts:messages.not_found' };
      if (!(await acknowledge(db, a.id, by, input.reason))) {
        return { tone: 'info', code: 'alerts:messages.not_firing', values: { state: a.state } };
      }
      await recordEvent(db, a, 'acknowledged', by, { reason: input.reason });
      await auditAction(request, who, {
        action: AUDIT_ACTIONS.alertAcknowledge,
        targetType: 'alert',
        targetId: a.id,
        outcome: 'ok',
        detail: { rule: a.ruleId, reason: input.reason },
      });
      return { tone: 'ok', code: 'alerts:messages.acknowledged', values: { rule: a.ruleId } };
    }
    case 'silence': {
      const ruleId = input.ruleId as AlertRuleId;
      const endsAt = isoIn(input.minutes * 60_000);
      const s = await insertSilence(db, { ruleId, reason: input.reason, endsAt, by });
      await auditAction(request, who, {
        action: AUDIT_ACTIONS.alertSilence,
        targetType: 'alert_rule',
        targetId: ruleId,
        outcome: 'ok',
        detail: { silenceId: s.id, endsAt, reason: input.reason },
      });
      return { tone: 'ok', code: 'alerts:messages.silenced', values: { rule: ruleId, endsAt } };
    }
    case 'end-silence': {
      const s = await getSilence(db, input.silenceId);
      if (!s) return { tone: 'error', code: 'alerts:messages.not_found' };
      if (!(await endSilence(db, s.id, by))) return { tone: 'info', code: 'alerts:messages.silence_over' };
      await auditAction(request, who, {
        action: AUDIT_ACTIONS.alertSilenceEnd,
        targetType: 'alert_rule',
        targetId: s.ruleId,
        outcome: 'ok',
        detail: { silenceId: s.id, reason: s.reason },
      });
      return { tone: 'ok', code: 'alerts:messages.silence_ended', values: { rule: s.ruleId } };
    }
    case 'save-rule':
    case 'reset-rule': {
      const ruleId = input.ruleId as AlertRuleId;
      const cfg = await alertConfig(db, env);
      const before = cfg.rules[ruleId];
      const overrides = { ...cfg.adminOverrides };
      if (input.intent === 'reset-rule') delete overrides[ruleId];
      else {
        const read = readRuleForm(ruleId, values, baseSettings(env)[ruleId]);
        if ('errors' in read)
          return { tone: 'error', code: 'alerts:messages.check_form', errors: read.errors, formValues: values, form: `rule:${ruleId}` };
        if (Object.keys(read.override).length) overrides[ruleId] = read.override;
        else delete overrides[ruleId];
      }
      await saveRuleOverrides(db, overrides, who.operator.id);
      const after = (await alertConfig(db, env)).rules[ruleId];
      await auditAction(request, who, {
        action: AUDIT_ACTIONS.alertRuleChange,
        targetType: 'alert_rule',
        targetId: ruleId,
        outcome: 'ok',
        detail: { before, after, reset: input.intent === 'reset-rule' },
      });
      return {
        tone: 'ok',
        code: input.intent === 'reset-rule' ? 'alerts:messages.rule_reset' : 'alerts:messages.rule_saved',
        values: { rule: ruleId },
      };
    }
    case 'save-recipients':
    case 'reset-recipients': {
      const before = (await alertConfig(db, env)).routing;
      if (input.intent === 'reset-recipients') await resetRouting(db);
      else {
        const errors: Record<string, string> = {};
        const lists = { critical: addresses(input.critical), warning: addresses(input.warning) };
        for (const sev of SEVERITIES) {
          const bad = lists[sev].find((a) => !checkEmail(a).ok);
          if (bad) errors[sev] = 'alerts:errors.recipient_invalid';
          else if (lists[sev].length > 50) errors[sev] = 'alerts:errors.too_many_recipients';
        }
        if (Object.keys(errors).length)
          return { tone: 'error', code: 'alerts:messages.check_form', errors, formValues: values, form: 'recipients' };
        await saveRouting(db, lists, who.operator.id);
      }
      const after = (await alertConfig(db, env)).routing;
      await auditAction(request, who, {
        action: AUDIT_ACTIONS.alertRecipientsChange,
        targetType: 'setting',
        targetId: 'alerts.routing',
        outcome: 'ok',
        detail: { before, after, reset: input.intent === 'reset-recipients' },
      });
      return {
        tone: 'ok',
        code: input.intent === 'reset-recipients' ? 'alerts:messages.recipients_reset' : 'alerts:messages.recipients_saved',
      };
    }
  }
}

/** Addresses as typed: separated by commas, semicolons, spaces or lines; duplicates once. */
function addresses(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\s,;]+/)
        .map((a) => a.trim())
        .filter(Boolean),
    ),
  ];
}

/**
 * A rule's form → the admin's override: only what differs from the environment's settings, so a
 * later change of the environment still reaches what the admin did not touch.
 */
function readRuleForm(
  rule: AlertRuleId,
  form: Record<string, string>,
  base: RuleSettings,
): { override: RuleOverride } | { errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const num = (field: string, raw: string | undefined, min: number, max: number, int: boolean): number | undefined => {
    const n = Number((raw ?? '').trim());
    if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min || n > max) {
      errors[field] = int ? 'alerts:errors.whole_number' : 'alerts:errors.number_range';
      return undefined;
    }
    return n;
  };
  const o: RuleOverride = {};
  const enabled = form.enabled === 'on' || form.enabled === 'true';
  if (enabled !== base.enabled) o.enabled = enabled;
  const severity = form.severity;
  if (!(SEVERITIES as readonly string[]).includes(severity ?? '')) errors.severity = 'alerts:errors.invalid';
  else if (severity !== base.severity) o.severity = severity as RuleSettings['severity'];
  const forSeconds = num('forSeconds', form.forSeconds, 0, DURATION_MAX_SECONDS, true);
  if (forSeconds !== undefined && forSeconds !== base.forSeconds) o.forSeconds = forSeconds;
  const resolveSeconds = num('resolveSeconds', form.resolveSeconds, 0, DURATION_MAX_SECONDS, true);
  if (resolveSeconds !== undefined && resolveSeconds !== base.resolveSeconds) o.resolveSeconds = resolveSeconds;
  const params: Record<string, number> = {};
  for (const name of Object.keys(RULES[rule].defaults.params)) {
    const [min, max] = PARAM_BOUNDS[name] ?? [0, Number.MAX_SAFE_INTEGER];
    const n = num(`p.${name}`, form[`p.${name}`], min, max, false);
    if (n !== undefined && n !== base.params[name]) params[name] = n;
  }
  if (Object.keys(params).length) o.params = params;
  if (Object.keys(errors).length) return { errors };
  // The bounds above are the domain's own; checked once more where they are defined.
  if (checkOverride(rule, o).length) return { errors: { form: 'alerts:errors.invalid' } };
  return { override: o };
}
