import type { JobsOptions } from 'bullmq';
import type { Db } from '../../db/client.js';
import {
  activeProgrammesForUser,
  advanceProgramme,
  attachLink,
  getProgramme,
  insertMessage,
  insertProgramme,
  markEnqueued,
  markFailed,
  markReinvited,
  messagesAwaitingLink,
  messagesToRelay,
  messagesWaitingForLinks,
  programmesOvertaken,
  recordProgrammeOutcome,
  rejectionsWithoutProgramme,
  dueProgrammes,
  stopProgramme,
  cancelMessage,
  peekClaim,
  lastProgrammeMessage,
  queuedMessagesForUser,
  notificationsForUser,
  notificationsPendingFor,
} from '../../db/repositories/notifications.js';
import { activeLink, lastReinvitation, linksForUser } from '../../db/repositories/links.js';
import { latestDetails } from '../../db/repositories/details.js';
import type { DataKey } from '../../db/encryption.js';
import type { KycDetails } from '../../capa/types.js';
import { findUserById, stateHistory } from '../../db/repositories/users.js';
import { repeatsReinvitedRejection } from '../../domain/state-machine.js';
import type {
  KycState,
  Notification,
  NotificationChannelName,
  NotificationKind,
  NotificationLocale,
  RetryProgramme,
  User,
} from '../../db/schema.js';
import type { Env } from '../../lib/config.js';
import type { Logger } from '../../lib/logger.js';
import { generateLink } from '../definitions/generate-link.js';
import { sendNotification } from '../definitions/send-notification.js';
import type { Enqueuer } from '../types.js';
import { addressOn } from './channel.js';
import { defaultLocale } from './templates.js';

/**
 * The retry programme and the glue between KYC events and the ledger. Every function takes its
 * clock (`now`) so the cadence is tested with a fake clock instead of fake timers.
 *
 * Programme: a customer becomes REJECTED → one programme for that rejection (unique per
 * user + rejection time) → step 0 = "not approved, try again" with a fresh link → follow-ups at
 * the cadence's day offsets from the start (default 1, 3, 7; at most NOTIFY_MAX_FOLLOWUPS) →
 * stopped the moment the customer starts or finishes KYC, or an operator stops it.
 */

export interface NotifyDeps {
  db: Db;
  enqueue: Enqueuer;
  env: Env;
  logger: Logger;
  /** To read KYC details snapshots (encrypted at rest). */
  dataKeys?: DataKey[];
}

const DAY_MS = 86_400_000;
/** Rejections older than this are not picked up by the sweep (no messages for old history on deploy). */
export const CATCH_UP_MS = DAY_MS;
/** A message queued this long without settling is queued again (Redis lost it, or a crash). */
export const RELAY_STALE_MS = 15 * 60_000;
/** A link request with no trace this long after the message was created is asked for again. */
export const LINK_REQUEST_STALE_MS = 10 * 60_000;
/** A message still waiting for its link after this long is recorded as failed. */
export const LINK_GIVE_UP_MS = DAY_MS;

export const PROGRESSED: readonly KycState[] = ['IN_PROGRESS', 'VERIFIED', 'REVIEW_NEEDED'];

const STOP_REASON: Partial<Record<KycState, string>> = {
  IN_PROGRESS: 'customer started KYC',
  VERIFIED: 'customer verified',
  REVIEW_NEEDED: 'customer submitted KYC (in review)',
};

export function cadenceFrom(env: Pick<Env, 'NOTIFY_FOLLOWUP_DAYS' | 'NOTIFY_MAX_FOLLOWUPS'>): number[] {
  return [...env.NOTIFY_FOLLOWUP_DAYS].sort((a, b) => a - b).slice(0, env.NOTIFY_MAX_FOLLOWUPS);
}

/** When follow-up `step` (1-based) is due for a programme started at `startIso`; null if none. */
export function followupDueAt(startIso: string, cadence: readonly number[], step: number): string | null {
  const days = cadence[step - 1];
  if (days === undefined) return null;
  return new Date(Date.parse(startIso) + Math.round(days * DAY_MS)).toISOString();
}

/** Retries with exponential backoff, tuned by env (the job's defaults are the fallback). */
export function sendOptions(env: Pick<Env, 'NOTIFY_SEND_ATTEMPTS' | 'NOTIFY_BACKOFF_MS'>): JobsOptions {
  return { attempts: env.NOTIFY_SEND_ATTEMPTS, backoff: { type: 'exponential', delay: env.NOTIFY_BACKOFF_MS } };
}

/** Queues the send job for a ledger row. A failed add (Redis down) is left to the sweep's relay. */
export async function enqueueSend(deps: NotifyDeps, row: Pick<Notification, 'id'>, opts: { relay?: boolean } = {}): Promise<boolean> {
  try {
    // A relay gets its own job id: the original job may sit in the failed set, where a second
    // add with the same id would be ignored. Running twice is safe (row status + claim).
    const jobId = opts.relay ? `notify-${row.id}-relay-${Date.now()}` : undefined;
    await deps.enqueue.add(sendNotification, { notificationId: row.id }, { ...sendOptions(deps.env), ...(jobId ? { jobId } : {}) });
    await markEnqueued(deps.db, row.id);
    return true;
  } catch (err) {
    deps.logger.warn({ notificationId: row.id, err: (err as Error).message }, 'could not queue a notification; the sweep will queue it');
    return false;
  }
}

async function requestLink(deps: NotifyDeps, user: User, requestId: string, requestedBy: string | null): Promise<void> {
  try {
    await deps.enqueue.add(generateLink, { userId: user.id, country: user.country as 'MX' | 'DO', requestId, requestedBy, notify: true });
  } catch (err) {
    deps.logger.warn({ userId: user.id, err: (err as Error).message }, 'could not request a link; the sweep will ask again');
  }
}

export interface QueueMessageInput {
  user: User;
  kind: NotificationKind;
  dedupeKey: string;
  channel?: NotificationChannelName;
  locale?: NotificationLocale | null;
  programmeId?: string | null;
  step?: number | null;
  cause?: string | null;
  createdBy?: string | null;
  /** Send with this link, or `fresh` to generate a new one (the message waits for it). */
  link: { id: string; url: string } | { fresh: string };
  /** Record the message but let the sweep request its link later (see startRetryProgramme). */
  deferLinkRequest?: boolean;
}

/**
 * Records a message in the ledger and queues what it needs next: the send job, or first a new
 * link (generate-link with notify; the link-issued hook attaches it and queues the send).
 */
export async function queueMessage(deps: NotifyDeps, input: QueueMessageInput): Promise<{ row: Notification; created: boolean }> {
  const channelName = input.channel ?? 'email';
  const address = addressOn(deps.env, channelName, input.user) ?? '';
  const fresh = 'fresh' in input.link ? input.link.fresh : null;
  const noCountry = fresh && input.user.country !== 'MX' && input.user.country !== 'DO';
  const { row, created } = await insertMessage(deps.db, {
    userId: input.user.id,
    kind: input.kind,
    channel: channelName,
    locale: input.locale ?? defaultLocale(input.user.country),
    address,
    dedupeKey: input.dedupeKey,
    programmeId: input.programmeId ?? null,
    step: input.step ?? null,
    linkId: 'id' in input.link ? input.link.id : null,
    linkUrl: 'url' in input.link ? input.link.url : null,
    linkRequestId: fresh,
    cause: input.cause ?? null,
    createdBy: input.createdBy ?? null,
    failWith: noCountry ? 'the customer has no country (MX or DO) to generate a KYC link for' : null,
  });
  if (!created || row.status !== 'queued') return { row, created };
  if (fresh) {
    if (!input.deferLinkRequest) await requestLink(deps, input.user, fresh, input.createdBy ?? null);
  } else await enqueueSend(deps, row);
  return { row, created };
}

// ------------------------------------------------------------------ link issued

/**
 * generate-link finished. Messages waiting for this request's link get it and are queued; with
 * `notify` and nobody waiting, the link itself is e-mailed ("your verification link").
 */
export async function onLinkIssuedNotify(
  deps: NotifyDeps,
  e: {
    userId: string;
    linkId: string;
    notify: boolean;
    locale?: NotificationLocale | null;
    requestId: string | null;
    requestedBy: string | null;
    cause: string;
  },
): Promise<Notification[]> {
  const links = await linksForUser(deps.db, e.userId);
  const link = links.find((l) => l.id === e.linkId);
  if (!link) return [];
  const waiting = e.requestId ? await messagesAwaitingLink(deps.db, e.requestId) : [];
  const out: Notification[] = [];
  for (const m of waiting) {
    if (await attachLink(deps.db, m.id, { id: link.id, url: link.url })) {
      await enqueueSend(deps, m);
      out.push(m);
    }
  }
  if (waiting.length === 0 && e.notify) {
    // One e-mail per link: when a second run of the same link job finds the message it attached
    // the first time (a retry e-mail, say), the link is not e-mailed again on its own.
    if ((await notificationsForUser(deps.db, e.userId)).some((m) => m.linkId === link.id)) return out;
    const user = await findUserById(deps.db, e.userId);
    if (!user) return out;
    const { row } = await queueMessage(deps, {
      user,
      kind: 'kyc_link',
      locale: e.locale ?? null,
      dedupeKey: `link:${link.id}`,
      link: { id: link.id, url: link.url },
      cause: e.cause,
      createdBy: e.requestedBy,
    });
    out.push(row);
  }
  return out;
}

// ------------------------------------------------------------------ state changes

/** Starts the programme for the customer's current rejection (idempotent per rejection). */
export async function startRetryProgramme(
  deps: NotifyDeps,
  userId: string,
  now: Date = new Date(),
  cause: string | null = null,
): Promise<RetryProgramme | null> {
  const user = await findUserById(deps.db, userId);
  if (!user || user.kycState !== 'REJECTED' || user.type !== 'INDIVIDUAL') return null;
  const cadence = cadenceFrom(deps.env);
  const nowIso = now.toISOString();
  const result = await deps.db.transaction().execute(async (trx) => {
    const { programme, created } = await insertProgramme(trx, {
      userId,
      rejectedAt: user.kycStateChangedAt,
      cadenceDays: cadence,
      firstDueAt: followupDueAt(nowIso, cadence, 1),
      now: nowIso,
    });
    if (!created) return { programme, created };
    // An older programme (an earlier rejection) ends here: this one takes over.
    for (const p of await activeProgrammesForUser(trx, userId)) {
      if (p.id !== programme.id) await stopProgramme(trx, p.id, 'rejected again', null, nowIso);
    }
    return { programme, created };
  });
  if (result.created) {
    await queueMessage(deps, {
      user,
      kind: 'kyc_retry',
      dedupeKey: `programme:${result.programme.id}:0`,
      programmeId: result.programme.id,
      step: 0,
      link: { fresh: `retry-${result.programme.id}-0` },
      cause,
      // A webhook's rejection is followed by a Get KYC Details check. A new link issued before
      // that check lands would be undone by it (the poll still sees the old, rejected
      // verification and moves LINK_ISSUED back to REJECTED), so the link is requested once
      // Capa has confirmed the rejection (the sweep does it), or after LINK_REQUEST_STALE_MS.
      deferLinkRequest: !rejectionConfirmed(user),
    });
  }
  return result.programme;
}

/** Capa confirmed the current state (a poll) at or after the change. */
export function rejectionConfirmed(user: Pick<User, 'capaConfirmedAt' | 'kycStateChangedAt'>): boolean {
  return Boolean(user.capaConfirmedAt && user.capaConfirmedAt >= user.kycStateChangedAt);
}

/** Stops the customer's active programmes and cancels their unsent messages. */
export async function stopProgrammesForUser(
  deps: NotifyDeps,
  userId: string,
  reason: string,
  by: string | null = null,
  now: Date = new Date(),
): Promise<number> {
  let n = 0;
  await deps.db.transaction().execute(async (trx) => {
    for (const p of await activeProgrammesForUser(trx, userId)) if (await stopProgramme(trx, p.id, reason, by, now.toISOString())) n++;
  });
  return n;
}

/**
 * A move to REJECTED that repeats the rejection the customer was already re-invited from (an
 * echo): Capa's details keep describing the verification we acted on until the customer submits
 * again, and a late event of it may have shown another state in between. It is a new rejection
 * only if the verification Capa reported (the latest details read) is newer than the latest
 * re-invitation; the rule itself is `repeatsReinvitedRejection` (domain/state-machine.ts).
 */
export async function isRejectionEcho(
  deps: Pick<NotifyDeps, 'db' | 'dataKeys'>,
  e: { userId: string; from: string; to: string },
): Promise<boolean> {
  if (e.to !== 'REJECTED') return false;
  const reinvitation = await lastReinvitation(deps.db, e.userId);
  // Never re-invited (most rejections): nothing to repeat, and no details to decrypt.
  if (!reinvitation) return false;
  let verificationCreatedAt: string | null = null;
  try {
    const d = await latestDetails<KycDetails>(deps.db, e.userId, deps.dataKeys ?? []);
    verificationCreatedAt = typeof d?.details?.createdAt === 'string' ? d.details.createdAt : null;
  } catch {
    verificationCreatedAt = null;
  }
  return repeatsReinvitedRejection({ from: e.from as KycState, to: 'REJECTED', reinvitation, verificationCreatedAt });
}

export async function onStateChangedNotify(
  deps: NotifyDeps,
  e: { userId: string; from: string; to: string; cause: string },
  now: Date = new Date(),
): Promise<void> {
  const to = e.to as KycState;
  if (await isRejectionEcho(deps, e)) {
    deps.logger.warn(
      { userId: e.userId, from: e.from, cause: e.cause },
      'notifications: the rejection the customer was re-invited from was reported again (an earlier verification); no new programme',
    );
    return;
  }
  // Most state changes concern customers who never had a retry programme and have nothing
  // queued (first-time KYC): one indexed read, shared with the other changes a worker commits
  // together, spares them the bookkeeping below.
  const pending = await notificationsPendingFor(deps.db, e.userId);
  if (pending.programme) await recordProgrammeOutcome(deps.db, e.userId, to, now.toISOString());
  if (PROGRESSED.includes(to)) {
    if (pending.programme) await stopProgrammesForUser(deps, e.userId, STOP_REASON[to]!, null, now);
    // A link e-mail not yet sent is pointless once the customer has started.
    if (pending.queued)
      for (const m of await queuedMessagesForUser(deps.db, e.userId)) await cancelMessage(deps.db, m.id, STOP_REASON[to]!);
  }
  if (to === 'REJECTED') await startRetryProgramme(deps, e.userId, now, e.cause);
}

// ------------------------------------------------------------------ the sweep

export interface SweepReport {
  started: number;
  stopped: number;
  followups: number;
  linksAttached: number;
  linksRequested: number;
  failed: number;
  relayed: number;
}

async function runFollowup(deps: NotifyDeps, p: RetryProgramme, now: Date, report: SweepReport): Promise<void> {
  const user = await findUserById(deps.db, p.userId);
  if (!user) return;
  if (PROGRESSED.includes(user.kycState)) {
    if (await stopProgrammesForUser(deps, user.id, STOP_REASON[user.kycState]!, null, now)) report.stopped++;
    return;
  }
  // One message at a time: while the previous one is unsent (SMTP down), the next one waits.
  const prev = await lastProgrammeMessage(deps.db, p.id);
  if (prev?.status === 'queued') return;
  if (prev?.status === 'failed') {
    await stopProgrammesForUser(deps, user.id, `message not delivered: ${prev.failureReason ?? 'failed'}`, null, now);
    report.stopped++;
    return;
  }
  const step = p.nextStep;
  const cadence = JSON.parse(p.cadenceDays) as number[];
  if (
    !(await advanceProgramme(
      deps.db,
      p.id,
      step,
      { step: step + 1, dueAt: followupDueAt(p.createdAt, cadence, step + 1) },
      now.toISOString(),
    ))
  )
    return;
  const link = await activeLink(deps.db, user.id);
  const usable = link && !user.linkExpired ? { id: link.id, url: link.url } : null;
  const { created } = await queueMessage(deps, {
    user,
    kind: 'kyc_retry_reminder',
    dedupeKey: `programme:${p.id}:${step}`,
    programmeId: p.id,
    step,
    link: usable ?? { fresh: `retry-${p.id}-${step}` },
    cause: `programme:${p.id}`,
  });
  if (created) report.followups++;
}

/**
 * The notification sweep (a scheduled job; tests call it with their own clock). The database is
 * the truth: it starts programmes a missed hook did not, stops programmes whose customer moved
 * on, sends due follow-ups, repairs messages waiting for a link, and re-queues what Redis lost.
 */
export async function runNotificationSweep(deps: NotifyDeps, now: Date = new Date()): Promise<SweepReport> {
  const report: SweepReport = { started: 0, stopped: 0, followups: 0, linksAttached: 0, linksRequested: 0, failed: 0, relayed: 0 };
  const t = now.getTime();

  for (const r of await rejectionsWithoutProgramme(deps.db, new Date(t - CATCH_UP_MS).toISOString())) {
    // Same rule as the hook: a rejection Capa reported before our re-invitation is not new.
    const last = (await stateHistory(deps.db, r.id)).at(-1);
    if (await isRejectionEcho(deps, { userId: r.id, from: last?.fromState ?? 'LINK_ISSUED', to: 'REJECTED' })) continue;
    if (await startRetryProgramme(deps, r.id, now, 'sweep')) report.started++;
  }
  for (const p of await programmesOvertaken(deps.db)) {
    const reason = STOP_REASON[p.kycState] ?? 'customer moved on';
    await deps.db.transaction().execute(async (trx) => {
      if (await stopProgramme(trx, p.id, reason, null, now.toISOString())) report.stopped++;
    });
  }
  for (const p of await dueProgrammes(deps.db, now.toISOString())) await runFollowup(deps, p, now, report);

  for (const m of await messagesWaitingForLinks(deps.db)) {
    const rid = m.linkRequestId!;
    const c = await peekClaim(deps.db, `capa-link:${rid}`);
    if (c?.status === 'done') {
      const res = c.result as { linkId?: string; url?: string } | null;
      if (res?.linkId && res.url && (await attachLink(deps.db, m.id, { id: res.linkId, url: res.url }))) {
        await enqueueSend(deps, m);
        report.linksAttached++;
      }
    } else if (c?.status === 'failed') {
      if (await markFailed(deps.db, m.id, `no KYC link could be generated: ${JSON.stringify(c.result)}`)) report.failed++;
      if (m.programmeId) await stopProgrammesForUser(deps, m.userId, 'no KYC link could be generated', null, now);
    } else if (!c) {
      const age = t - Date.parse(m.createdAt);
      if (age > LINK_GIVE_UP_MS) {
        if (await markFailed(deps.db, m.id, 'no KYC link was generated within a day (is the customer in Capa?)')) report.failed++;
        continue;
      }
      const user = await findUserById(deps.db, m.userId);
      if (!user) continue;
      // First request of a deferred retry link (Capa confirmed the rejection), or a request
      // that left no trace (Redis lost it) asked again. Same requestId: never two links.
      const deferredReady = m.step === 0 && m.kind === 'kyc_retry' && rejectionConfirmed(user);
      if (deferredReady || age > LINK_REQUEST_STALE_MS) {
        await requestLink(deps, user, rid, m.createdBy);
        report.linksRequested++;
      }
    }
  }

  for (const m of await messagesToRelay(deps.db, { staleBefore: new Date(t - RELAY_STALE_MS).toISOString(), limit: 500 })) {
    if (await enqueueSend(deps, m, { relay: true })) report.relayed++;
  }
  return report;
}

export async function markProgrammeReinvited(deps: Pick<NotifyDeps, 'db'>, row: Notification, at: string): Promise<void> {
  if (row.programmeId && row.step === 0) await markReinvited(deps.db, row.programmeId, at);
}

export { getProgramme };
