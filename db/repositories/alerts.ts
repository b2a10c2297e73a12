import { randomUUID } from 'node:crypto';
import type { AlertRuleId, Measurement, RuleSettings } from '../../domain/alerts.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';
import type { Alert, AlertEvent, AlertEventKind, AlertSilence, Notification } from '../schema.js';

/**
 * Alerts, their history, silences and each rule's memory. Every state change is a conditional
 * update (`where state = …`): when two processes evaluate at once, exactly one of them wins each
 * transition, and only the winner records the event and notifies.
 */

export interface Actor {
  operatorId: string | null;
  /** `system`, or the operator's e-mail. */
  name: string;
}
export const SYSTEM: Actor = { operatorId: null, name: 'system' };

/** The rule's open (pending, firing or acknowledged) alert. */
export async function openAlert(db: Executor, rule: AlertRuleId): Promise<Alert | undefined> {
  return db.selectFrom('alerts').selectAll().where('openKey', '=', rule).executeTakeFirst();
}

export async function openAlerts(db: Executor): Promise<Alert[]> {
  return db.selectFrom('alerts').selectAll().where('openKey', 'is not', null).execute();
}

export async function getAlert(db: Executor, id: string): Promise<Alert | undefined> {
  return db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Opens a pending alert for the rule unless one is open already (another process may have just
 * opened it); returns the open alert either way.
 */
export async function openPending(
  db: Executor,
  rule: AlertRuleId,
  m: Measurement,
  settings: RuleSettings,
  page: string,
  now: string,
): Promise<Alert> {
  await db
    .insertInto('alerts')
    .values({
      id: randomUUID(),
      ruleId: rule,
      openKey: rule,
      state: 'pending',
      severity: settings.severity,
      pendingSince: now,
      value: m.value,
      peakValue: m.value,
      measure: JSON.stringify(m.values),
      settings: JSON.stringify(settings),
      page,
      evaluatedAt: now,
      updatedAt: now,
    })
    .onConflict((oc) => oc.column('openKey').doNothing())
    .execute();
  const row = await openAlert(db, rule);
  if (!row) throw new Error(`alert for ${rule} was resolved while being opened`);
  return row;
}

/** pending → firing; true for the one caller that made the change. */
export async function markFiring(db: Executor, id: string, settings: RuleSettings, now: string): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({ state: 'firing', firedAt: now, severity: settings.severity, settings: JSON.stringify(settings), updatedAt: now })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** The latest measurement of an open alert (and, when the condition is back, the end of its resolve delay). */
export async function refreshAlert(
  db: Executor,
  a: Pick<Alert, 'id' | 'peakValue'>,
  m: Measurement,
  page: string,
  now: string,
  opts: { clearResolving?: boolean } = {},
): Promise<void> {
  await db
    .updateTable('alerts')
    .set({
      value: m.value,
      peakValue: Math.max(a.peakValue, m.value),
      measure: JSON.stringify(m.values),
      page,
      evaluatedAt: now,
      updatedAt: now,
      ...(opts.clearResolving ? { resolvingSince: null } : {}),
    })
    .where('id', '=', a.id)
    .where('openKey', 'is not', null)
    .execute();
}

/** A pending alert whose condition cleared before it fired: it never happened. */
export async function dropPending(db: Executor, id: string): Promise<boolean> {
  const r = await db.deleteFrom('alerts').where('id', '=', id).where('state', '=', 'pending').executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** The condition is false: the resolve delay starts (once). */
export async function startResolving(db: Executor, id: string, m: Measurement, now: string): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({ resolvingSince: now, value: m.value, measure: JSON.stringify(m.values), evaluatedAt: now, updatedAt: now })
    .where('id', '=', id)
    .where('state', 'in', ['firing', 'acknowledged'])
    .where('resolvingSince', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** firing|acknowledged → resolved; true for the one caller that made the change. */
export async function markResolved(
  db: Executor,
  id: string,
  reason: 'cleared' | 'rule_disabled',
  now: string,
  m: Measurement | null,
): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({
      state: 'resolved',
      openKey: null,
      resolvedAt: now,
      resolvedReason: reason,
      evaluatedAt: now,
      updatedAt: now,
      ...(m ? { value: m.value, measure: JSON.stringify(m.values) } : {}),
    })
    .where('id', '=', id)
    .where('state', 'in', ['firing', 'acknowledged'])
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** firing → acknowledged; false when it is no longer firing. */
export async function acknowledge(db: Executor, id: string, by: Actor, reason: string, now = nowIso()): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({
      state: 'acknowledged',
      acknowledgedAt: now,
      acknowledgedBy: by.operatorId,
      acknowledgedByName: by.name,
      ackReason: reason,
      updatedAt: now,
    })
    .where('id', '=', id)
    .where('state', '=', 'firing')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * Claims the firing alert's one notification: true for the caller that should send it. An
 * alert acknowledged before it could be notified (it was silenced) is not notified any more.
 */
export async function claimNotification(db: Executor, id: string, now: string): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({ notifiedAt: now, silenceId: null, updatedAt: now })
    .where('id', '=', id)
    .where('state', '=', 'firing')
    .where('notifiedAt', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Claims the resolved alert's one "resolved" message (only alerts that were notified get one). */
export async function claimResolutionNotification(db: Executor, id: string, now: string): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({ resolutionNotifiedAt: now })
    .where('id', '=', id)
    .where('state', '=', 'resolved')
    .where('notifiedAt', 'is not', null)
    .where('resolutionNotifiedAt', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Records the silence that keeps an alert's notification back; true when it is news. */
export async function markSilenced(db: Executor, id: string, silenceId: string, now: string): Promise<boolean> {
  const r = await db
    .updateTable('alerts')
    .set({ silenceId, updatedAt: now })
    .where('id', '=', id)
    .where('notifiedAt', 'is', null)
    .where((eb) => eb.or([eb('silenceId', 'is', null), eb('silenceId', '<>', silenceId)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

// ------------------------------------------------------------------ history

export async function recordEvent(
  db: Executor,
  a: Pick<Alert, 'id' | 'ruleId'>,
  kind: AlertEventKind,
  by: Actor,
  detail: Record<string, unknown> | null = null,
  at = nowIso(),
): Promise<void> {
  await db
    .insertInto('alertEvents')
    .values({
      alertId: a.id,
      ruleId: a.ruleId,
      at,
      kind,
      operatorId: by.operatorId,
      actor: by.name,
      detail: detail ? JSON.stringify(detail) : null,
    })
    .execute();
}

export async function eventsFor(db: Executor, alertIds: string[]): Promise<AlertEvent[]> {
  if (!alertIds.length) return [];
  return db.selectFrom('alertEvents').selectAll().where('alertId', 'in', alertIds).orderBy('id', 'asc').execute();
}

/** Alerts that fired (firing, acknowledged or resolved), newest first. */
export async function alertHistory(
  db: Executor,
  opts: { rule?: AlertRuleId | null; limit: number; offset?: number },
): Promise<{ rows: Alert[]; total: number }> {
  let q = db.selectFrom('alerts').where('state', '<>', 'pending');
  if (opts.rule) q = q.where('ruleId', '=', opts.rule);
  const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  const rows = await q
    .selectAll()
    .orderBy('firedAt', 'desc')
    .orderBy('id', 'desc')
    .limit(opts.limit)
    .offset(opts.offset ?? 0)
    .execute();
  return { rows, total: Number(total?.n ?? 0) };
}

/** Firing (not acknowledged) and acknowledged alerts, by severity: the header's badge. */
export async function openCounts(db: Executor): Promise<Array<{ state: string; severity: string; n: number }>> {
  const rows = await db
    .selectFrom('alerts')
    .select(['state', 'severity', (eb) => eb.fn.countAll<number>().as('n')])
    .where('openKey', 'is not', null)
    .where('state', '<>', 'pending')
    .groupBy(['state', 'severity'])
    .execute();
  return rows.map((r) => ({ state: r.state, severity: r.severity, n: Number(r.n) }));
}

/** Ledger rows of these alerts (who was told, how it went). */
export async function alertMessages(db: Executor, alertIds: string[]) {
  if (!alertIds.length) return [];
  return db
    .selectFrom('notifications')
    .select(['id', 'alertId', 'kind', 'channel', 'address', 'status', 'failureReason', 'lastError', 'attempts', 'createdAt', 'sentAt'])
    .where('alertId', 'in', alertIds)
    .orderBy('createdAt', 'asc')
    .execute();
}

/** Alert messages still to send, oldest first (the web process sends them while no worker runs). */
export async function queuedAlertMessages(db: Executor, limit = 50): Promise<Notification[]> {
  return db
    .selectFrom('notifications')
    .selectAll()
    .where('status', '=', 'queued')
    .where('alertId', 'is not', null)
    .orderBy('createdAt', 'asc')
    .limit(limit)
    .execute();
}

// ------------------------------------------------------------------ silences

export async function insertSilence(
  db: Executor,
  s: { ruleId: AlertRuleId; reason: string; endsAt: string; by: Actor },
  now = nowIso(),
): Promise<AlertSilence> {
  const row: AlertSilence = {
    id: randomUUID(),
    ruleId: s.ruleId,
    reason: s.reason,
    startsAt: now,
    endsAt: s.endsAt,
    createdBy: s.by.operatorId,
    createdByName: s.by.name,
    createdAt: now,
    endedAt: null,
    endedByName: null,
  };
  await db.insertInto('alertSilences').values(row).execute();
  return row;
}

/** Ends a silence before its time; false when it had already ended. */
export async function endSilence(db: Executor, id: string, by: Actor, now = nowIso()): Promise<boolean> {
  const r = await db
    .updateTable('alertSilences')
    .set({ endedAt: now, endedByName: by.name })
    .where('id', '=', id)
    .where('endedAt', 'is', null)
    .where('endsAt', '>', now)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function getSilence(db: Executor, id: string): Promise<AlertSilence | undefined> {
  return db.selectFrom('alertSilences').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The silence in force for a rule at `now` (the one ending last), if any. */
export async function activeSilence(db: Executor, rule: AlertRuleId, now: string): Promise<AlertSilence | undefined> {
  return db
    .selectFrom('alertSilences')
    .selectAll()
    .where('ruleId', '=', rule)
    .where('startsAt', '<=', now)
    .where('endsAt', '>', now)
    .where('endedAt', 'is', null)
    .orderBy('endsAt', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** Silences in force at `now` and those that ended in the last week (newest first). */
export async function recentSilences(db: Executor, now: string, since: string): Promise<AlertSilence[]> {
  return db
    .selectFrom('alertSilences')
    .selectAll()
    .where((eb) => eb.or([eb('endsAt', '>', now), eb('endsAt', '>=', since), eb('endedAt', '>=', since)]))
    .orderBy('createdAt', 'desc')
    .limit(200)
    .execute();
}

export async function silencesByIds(db: Executor, ids: string[]): Promise<AlertSilence[]> {
  if (!ids.length) return [];
  return db.selectFrom('alertSilences').selectAll().where('id', 'in', ids).execute();
}

// ------------------------------------------------------------------ each rule's last evaluation

export interface RuleState {
  ruleId: AlertRuleId;
  evaluatedAt: string;
  measure: Measurement | null;
  error: string | null;
  memory: unknown;
}

const parse = (s: string | null): unknown => {
  if (!s) return null;
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
};

export async function ruleStates(db: Executor): Promise<RuleState[]> {
  const rows = await db.selectFrom('alertRuleState').selectAll().execute();
  return rows.map((r) => ({
    ruleId: r.ruleId,
    evaluatedAt: r.evaluatedAt,
    measure: parse(r.measure) as Measurement | null,
    error: r.error,
    memory: parse(r.memory),
  }));
}

export async function ruleMemory(db: Executor, rule: AlertRuleId): Promise<unknown> {
  const r = await db.selectFrom('alertRuleState').select('memory').where('ruleId', '=', rule).executeTakeFirst();
  return parse(r?.memory ?? null);
}

export async function saveRuleState(
  db: Executor,
  rule: AlertRuleId,
  s: { at: string; measure: Measurement | null; error: string | null; memory?: unknown },
): Promise<void> {
  const row = {
    ruleId: rule,
    evaluatedAt: s.at,
    measure: s.measure ? JSON.stringify(s.measure) : null,
    error: s.error ? s.error.slice(0, 1000) : null,
    ...(s.memory !== undefined ? { memory: JSON.stringify(s.memory) } : {}),
  };
  const { ruleId: _key, ...update } = row;
  await db
    .insertInto('alertRuleState')
    .values({ memory: null, ...row })
    .onConflict((oc) => oc.column('ruleId').doUpdateSet(update))
    .execute();
}
