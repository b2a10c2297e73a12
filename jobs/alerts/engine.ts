import type { Db } from '../../db/client.js';
import {
  activeSilence,
  claimNotification,
  claimResolutionNotification,
  dropPending,
  getAlert,
  markFiring,
  markResolved,
  markSilenced,
  openAlert,
  openPending,
  recordEvent,
  refreshAlert,
  ruleMemory,
  saveRuleState,
  startResolving,
  SYSTEM,
} from '../../db/repositories/alerts.js';
import { insertMessage } from '../../db/repositories/notifications.js';
import type { Alert, AlertNotificationKind, Notification } from '../../db/schema.js';
import { ALERT_RULE_IDS, decide, RULES, type AlertRuleId, type Evaluator, type RuleSettings } from '../../domain/alerts.js';
import type { Env } from '../../lib/config.js';
import type { Logger } from '../../lib/logger.js';
import { enqueueSend } from '../notifications/programme.js';
import type { Queues } from '../queues.js';
import { alertConfig, type AlertConfig } from './config.js';
import { MEASURES, type MeasureResult } from './rules.js';

/**
 * Evaluates alert rules and moves their alerts (domain/alerts.ts decides, this applies): one
 * evaluation per rule, then the notification a firing alert owes. Safe to run in several
 * processes at once — every transition is a conditional update that one caller wins, and each
 * message has a unique dedupe key in the ledger — so two workers, or a worker and the web
 * process, never notify twice.
 */

export interface EngineDeps {
  db: Db;
  queues: Queues;
  env: Env;
  logger: Logger;
}

export interface RuleOutcome {
  rule: AlertRuleId;
  /** What happened: the decision taken, `disabled`, or `error` when the rule could not measure. */
  did: string;
  state: Alert['state'] | null;
  error?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The evaluator's rules: the worker's job runs `worker` rules, the web process `web` ones. */
export function rulesFor(evaluator: Evaluator): AlertRuleId[] {
  return ALERT_RULE_IDS.filter((id) => RULES[id].evaluator === evaluator);
}

export async function evaluateAlerts(
  deps: EngineDeps,
  opts: { evaluator?: Evaluator; rules?: AlertRuleId[]; now?: number } = {},
): Promise<RuleOutcome[]> {
  const now = opts.now ?? Date.now();
  const cfg = await alertConfig(deps.db, deps.env);
  const rules = opts.rules ?? rulesFor(opts.evaluator ?? 'worker');
  const out: RuleOutcome[] = [];
  for (const rule of rules) {
    try {
      out.push(await evaluateRule(deps, cfg, rule, now));
    } catch (err) {
      // One rule's failure (a database hiccup mid-transition) must not keep the others from running.
      deps.logger.warn({ rule, err: (err as Error).message }, 'alert rule evaluation failed');
      out.push({ rule, did: 'error', state: null, error: (err as Error).message });
    }
  }
  return out;
}

async function evaluateRule(deps: EngineDeps, cfg: AlertConfig, rule: AlertRuleId, now: number): Promise<RuleOutcome> {
  const { db } = deps;
  const at = iso(now);
  const settings = cfg.rules[rule];
  let open = await openAlert(db, rule);

  if (!settings.enabled) {
    if (open?.state === 'pending') await dropPending(db, open.id);
    else if (open && (await markResolved(db, open.id, 'rule_disabled', at, null))) {
      await recordEvent(db, open, 'resolved', SYSTEM, { reason: 'rule_disabled' }, at);
      await notifyResolution(deps, cfg, open, now);
    }
    await saveRuleState(db, rule, { at, measure: null, error: null });
    return { rule, did: 'disabled', state: null };
  }

  let result: MeasureResult | null = null;
  let error: string | null = null;
  try {
    result = await MEASURES[rule]({ db, queues: deps.queues, env: deps.env, now }, settings, await ruleMemory(db, rule));
  } catch (err) {
    error = (err as Error).message || String(err);
  }
  await saveRuleState(db, rule, {
    at,
    measure: result?.m ?? null,
    error,
    ...(result?.memory !== undefined ? { memory: result.memory } : {}),
  });
  const m = result?.m ?? null;
  const page = m?.page ?? RULES[rule].page;

  let did = 'none';
  // At most two steps: opening a pending alert may fire it at once (forSeconds 0).
  for (let step = 0; step < 2; step++) {
    const d = decide(open ?? null, m ? m.active : null, settings, now);
    did = d.do;
    if (d.do === 'open') {
      open = await openPending(db, rule, m!, settings, page, at);
      continue;
    }
    if (!open) break;
    if (d.do === 'fire') {
      if (await markFiring(db, open.id, settings, at)) {
        await recordEvent(db, open, 'fired', SYSTEM, { value: m!.value, values: m!.values, pendingSince: open.pendingSince, settings }, at);
      }
      await refreshAlert(db, open, m!, page, at);
    } else if (d.do === 'hold') {
      if (m) await refreshAlert(db, open, m, page, at, { clearResolving: d.clearResolving });
      if (d.clearResolving) await recordEvent(db, open, 'returned', SYSTEM, { value: m?.value ?? null }, at);
    } else if (d.do === 'drop') {
      await dropPending(db, open.id);
    } else if (d.do === 'start_resolving') {
      if (await startResolving(db, open.id, m!, at)) await recordEvent(db, open, 'resolving', SYSTEM, { value: m!.value }, at);
    } else if (d.do === 'resolve') {
      if (await markResolved(db, open.id, 'cleared', at, m)) {
        await recordEvent(db, open, 'resolved', SYSTEM, { reason: 'cleared', value: m?.value ?? null }, at);
        await notifyResolution(deps, cfg, open, now);
      }
    }
    break;
  }

  const current = await openAlert(db, rule);
  if (current?.state === 'firing' && !current.notifiedAt) await notifyFiring(deps, cfg, current, now);
  return { rule, did, state: current?.state ?? (did === 'resolve' ? 'resolved' : null), ...(error ? { error } : {}) };
}

// ------------------------------------------------------------------ notifications

/** The masked form of a webhook URL kept in the ledger: its origin, never the path (Slack's carries the secret). */
export function webhookAddress(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return 'webhook';
  }
}

/** Each recipient of an alert of this severity: the severity's e-mail list and the webhook. */
function recipients(cfg: AlertConfig, severity: RuleSettings['severity']): Array<{ channel: 'email' | 'webhook'; address: string }> {
  const emails = [...new Set(cfg.routing[severity].map((a) => a.trim()).filter(Boolean))];
  return [
    ...emails.map((address) => ({ channel: 'email' as const, address })),
    ...(cfg.webhook ? [{ channel: 'webhook' as const, address: webhookAddress(cfg.webhook.url) }] : []),
  ];
}

/**
 * Records one ledger row per recipient and queues each send. The dedupe key (alert, kind,
 * recipient) makes this safe to repeat: a second caller finds the rows and queues nothing.
 */
async function queueAlertMessages(deps: EngineDeps, cfg: AlertConfig, alert: Alert, kind: AlertNotificationKind): Promise<Notification[]> {
  const rows: Notification[] = [];
  for (const r of recipients(cfg, alert.severity)) {
    const { row, created } = await insertMessage(deps.db, {
      userId: null,
      alertId: alert.id,
      kind,
      channel: r.channel,
      locale: deps.env.DEFAULT_LOCALE,
      address: r.address,
      dedupeKey: `alert:${alert.id}:${kind}:${r.channel}:${r.address}`,
      cause: `alert:${alert.ruleId}`,
    });
    rows.push(row);
    if (created && row.status === 'queued') await enqueueSend({ ...deps, enqueue: deps.queues }, row);
  }
  return rows;
}

/** A firing alert's one notification, unless a silence holds it back (then it says which). */
async function notifyFiring(deps: EngineDeps, cfg: AlertConfig, alert: Alert, now: number): Promise<void> {
  const at = iso(now);
  const silence = await activeSilence(deps.db, alert.ruleId, at);
  if (silence) {
    if (await markSilenced(deps.db, alert.id, silence.id, at)) {
      await recordEvent(
        deps.db,
        alert,
        'silenced',
        SYSTEM,
        { silenceId: silence.id, reason: silence.reason, endsAt: silence.endsAt, by: silence.createdByName },
        at,
      );
    }
    return;
  }
  const rows = await queueAlertMessages(deps, cfg, alert, 'alert_firing');
  if (await claimNotification(deps.db, alert.id, at)) {
    await recordEvent(
      deps.db,
      alert,
      'notified',
      SYSTEM,
      { kind: 'alert_firing', recipients: rows.map((r) => ({ channel: r.channel, address: r.address })) },
      at,
    );
  }
}

/** Those told that an alert fired are told it resolved (unless its rule is silenced now). */
async function notifyResolution(deps: EngineDeps, cfg: AlertConfig, alert: Alert, now: number): Promise<void> {
  const at = iso(now);
  const fresh = await getAlert(deps.db, alert.id);
  if (!fresh?.notifiedAt || fresh.resolutionNotifiedAt) return;
  if (await activeSilence(deps.db, alert.ruleId, at)) return;
  const rows = await queueAlertMessages(deps, cfg, fresh, 'alert_resolved');
  if (await claimResolutionNotification(deps.db, alert.id, at)) {
    await recordEvent(
      deps.db,
      alert,
      'notified',
      SYSTEM,
      { kind: 'alert_resolved', recipients: rows.map((r) => ({ channel: r.channel, address: r.address })) },
      at,
    );
  }
}
