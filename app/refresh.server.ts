import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { z } from 'zod';
import {
  DRIFT_SORTABLE,
  driftCountsPerDay,
  driftForRun,
  driftForUser,
  driftTransitions,
  listDrift,
  type DriftSort,
} from '../db/repositories/drift.js';
import { expiredLinksForUser } from '../db/repositories/links.js';
import { findOperatorById } from '../db/repositories/operators.js';
import {
  addRunUsers,
  countLinkExpired,
  countStale,
  createRun,
  findRunByRequestId,
  getRun,
  linkExpiredUsers,
  listRuns,
  listStale,
  REFRESHABLE_STATES,
  runProgress,
  splitRefreshable,
  STALE_SORTABLE,
  thresholdsFromEnv,
  unmappedUsers,
  type RefreshableState,
  type StaleSort,
} from '../db/repositories/refresh.js';
import { KYC_STATES, type KycState, type RefreshRun } from '../db/schema.js';
import { estimateSeconds, MAX_RUN_SIZE, refreshRun } from '../jobs/definitions/refresh-run.js';
import { auditAction, canSeePii, type SignedIn } from './auth.server';
import { isoDay, pageCount, parsePaging, parseSorting } from './list-params.server';
import { maskEmail } from './pii';
import { storedErrorMessage } from './plain-errors.server';
import { services } from './services.server';
import type { Message } from './action-result';
import type { TimelineEntry, TimelineFact, TimelineSource } from './timeline-entry';

/**
 * Drift and refresh: the Drift page (/drift), the refresh control (/refresh), the run progress
 * page (/refresh/:id) and the drift entries on a customer's timeline.
 */

const PAGE_SIZES = { sizes: [10, 25, 50, 100], defaultSize: 25 };

// ------------------------------------------------------------------ stored words

/**
 * A drift's evidence, stored as English text (one part per missed event, joined by "; "), read
 * back as messages (`drift:evidence.*`) the page words in the reader's language. A part nobody
 * recognises is shown as it is.
 */
export function evidenceParts(text: string | null): Message[] | null {
  if (!text) return null;
  return text.split('; ').map((part): Message => {
    let m = /^(\w+): never received \(/.exec(part);
    if (m) return { code: 'drift:evidence.never_received', values: { event: m[1]! } };
    m = /^(\w+): received only with a bad signature \(#(\d+), (\w+)\)$/.exec(part);
    if (m) return { code: 'drift:evidence.bad_signature', values: { event: m[1]!, id: m[2]!, verdict: m[3]! } };
    m = /^(\w+): received \(#(\d+)\) but not processed yet when polled$/.exec(part);
    if (m) return { code: 'drift:evidence.not_processed', values: { event: m[1]!, id: m[2]! } };
    m = /^(\w+): received \(#(\d+), (\w+)(?:, (\w+))?\) — likely late or out of order$/.exec(part);
    if (m)
      return m[4]
        ? { code: 'drift:evidence.late_effect', values: { event: m[1]!, id: m[2]!, status: m[3]!, effect: m[4] } }
        : { code: 'drift:evidence.late', values: { event: m[1]!, id: m[2]!, status: m[3]! } };
    return { code: 'drift:evidence.other', values: { text: part } };
  });
}

/** Why a refresh run failed: customers left without an answer, or the job's own failure. */
export function runErrorMessage(text: string | null): Message | null {
  if (!text) return null;
  const m = /^(\d+) customer\(s\) got no answer within the time allowed$/.exec(text);
  return m ? { code: 'refresh:run.no_answer', values: { count: Number(m[1]) } } : storedErrorMessage(text, { final: true });
}

// ------------------------------------------------------------------ drift page

export async function driftPageData(who: SignedIn, sp: URLSearchParams) {
  const { db } = await services();
  const day = isoDay(sp.get('day'));
  const nowParam = sp.get('now');
  const nowState = nowParam && (KYC_STATES as readonly string[]).includes(nowParam) ? (nowParam as KycState) : null;
  const { sort, dir } = parseSorting<DriftSort>(sp, DRIFT_SORTABLE, 'detectedAt');
  const { page, pageSize } = parsePaging(sp, PAGE_SIZES);
  const since30 = new Date(Date.now() - 30 * 86_400_000).toISOString();
  const [perDay, transitions, list, unmapped, linkExpired] = await Promise.all([
    driftCountsPerDay(db, { days: 30 }),
    driftTransitions(db, { since: since30 }),
    listDrift(db, { day, nowState, sort, dir, page, pageSize }),
    unmappedUsers(db, 50),
    countLinkExpired(db),
  ]);
  const pii = canSeePii(who.operator.role);
  return {
    perDay,
    transitions,
    rows: list.rows.map((r) => ({
      id: r.id,
      userId: r.userId,
      externalUserId: r.externalUserId,
      email: pii ? r.email : maskEmail(r.email),
      detectedAt: r.detectedAt,
      wasState: r.wasState,
      nowState: r.nowState,
      currentState: r.currentState,
      jobName: r.jobName,
      jobId: r.jobId,
      triggeredBy: r.triggeredBy,
      runId: r.runId,
      missedEvents: r.missedEvents,
      evidence: evidenceParts(r.evidence),
    })),
    total: list.total,
    page,
    pageSize,
    pageCount: pageCount(list.total, pageSize),
    params: { day, now: nowState, sort, dir },
    unmapped,
    linkExpired,
  };
}

// ------------------------------------------------------------------ refresh control

/** What is queued ahead on the Capa queue; Redis down answers "unavailable" within a second, never hangs the page. */
async function capaQueueState() {
  const { queues } = await services();
  let timer: NodeJS.Timeout | undefined;
  try {
    if (queues.connection.status === 'end') throw new Error('Redis connection closed');
    const q = queues.queue('capa');
    const read = Promise.all([q.getJobCounts('waiting', 'prioritized', 'delayed', 'paused'), q.getRateLimitTtl()]);
    const [counts, ttl] = await Promise.race([
      read,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('Redis did not answer')), 1_000);
      }),
    ]);
    return { backlog: Object.values(counts).reduce((a, b) => a + b, 0), rateLimitedForMs: Math.max(0, ttl), available: true };
  } catch {
    return { backlog: 0, rateLimitedForMs: 0, available: false };
  } finally {
    clearTimeout(timer);
  }
}

export interface RunView extends RefreshRun {
  progress: Awaited<ReturnType<typeof runProgress>>;
}

async function withProgress(run: RefreshRun): Promise<RunView> {
  const { db } = await services();
  if (run.status === 'done' || run.status === 'failed') {
    return {
      ...run,
      progress: {
        total: run.total,
        answered: run.answered,
        failed: run.failed,
        pending: Math.max(0, run.total - run.answered - run.failed),
        drift: run.drift,
        settled: true,
      },
    };
  }
  return { ...run, progress: await runProgress(db, run) };
}

export async function refreshPageData(who: SignedIn, sp: URLSearchParams) {
  const { db, env } = await services();
  const thresholds = thresholdsFromEnv(env);
  const stateParam = sp.get('state');
  const state = (REFRESHABLE_STATES as readonly string[]).includes(stateParam ?? '') ? (stateParam as RefreshableState) : null;
  const { sort, dir } = parseSorting<StaleSort>(sp, STALE_SORTABLE, 'capaConfirmedAt', 'asc');
  const { page, pageSize } = parsePaging(sp, PAGE_SIZES);
  const [stale, list, runs, queue, linkExpired] = await Promise.all([
    countStale(db, thresholds),
    listStale(db, thresholds, { state, sort, dir, page, pageSize }),
    listRuns(db, { limit: 15 }),
    capaQueueState(),
    linkExpiredUsers(db, 20),
  ]);
  const pii = canSeePii(who.operator.role);
  return {
    thresholdsMinutes: {
      LINK_ISSUED: env.REFRESH_STALE_LINK_ISSUED_MINUTES,
      IN_PROGRESS: env.REFRESH_STALE_IN_PROGRESS_MINUTES,
      REVIEW_NEEDED: env.REFRESH_STALE_REVIEW_NEEDED_MINUTES,
    },
    scanEverySeconds: env.REFRESH_SCAN_EVERY_SECONDS,
    ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC,
    stale,
    rows: list.rows.map((r) => ({ ...r, email: pii ? r.email : maskEmail(r.email) })),
    total: list.total,
    page,
    pageSize,
    pageCount: pageCount(list.total, pageSize),
    params: { state, sort, dir },
    runs: await Promise.all(runs.map(withProgress)),
    queue,
    linkExpired: linkExpired.map((u) => ({ ...u, email: pii ? u.email : maskEmail(u.email) })),
  };
}

const MAX_SELECTED = 1000;

export const RefreshFormSchema = z.object({
  intent: z.enum(['preview', 'start'], { errorMap: () => ({ message: 'refresh:errors.intent' }) }),
  scope: z.enum(['all', 'selected'], { errorMap: () => ({ message: 'refresh:errors.scope' }) }),
  userIds: z.array(z.string().trim().min(1).max(100)).max(MAX_SELECTED, 'refresh:errors.over_limit'),
  requestId: z
    .string()
    .trim()
    .min(8)
    .max(100)
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional(),
});

export interface RefreshPreview {
  scope: 'all' | 'selected';
  calls: number;
  notInCapa: number;
  unknown: number;
  byState: Partial<Record<RefreshableState, number>>;
  backlog: number;
  rateLimitedForMs: number;
  ratePerSec: number;
  etaSeconds: number;
  queueAvailable: boolean;
  userIds: string[];
}

export async function previewRefresh(scope: 'all' | 'selected', userIds: string[]): Promise<RefreshPreview> {
  const { db, env } = await services();
  const queue = await capaQueueState();
  let calls: number;
  let notInCapa = 0;
  let unknown = 0;
  let byState: Partial<Record<RefreshableState, number>> = {};
  let ids: string[] = [];
  if (scope === 'all') {
    const c = await countStale(db, thresholdsFromEnv(env));
    calls = Math.min(c.total, MAX_RUN_SIZE);
    byState = { LINK_ISSUED: c.LINK_ISSUED, IN_PROGRESS: c.IN_PROGRESS, REVIEW_NEEDED: c.REVIEW_NEEDED };
  } else {
    const split = await splitRefreshable(db, userIds);
    calls = split.eligible.length;
    notInCapa = split.notInCapa.length;
    unknown = split.unknown.length;
    ids = split.eligible;
  }
  const etaSeconds = estimateSeconds(calls, {
    ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC,
    backlog: queue.backlog,
    rateLimitedForMs: queue.rateLimitedForMs,
  });
  return {
    scope,
    calls,
    notInCapa,
    unknown,
    byState,
    backlog: queue.backlog,
    rateLimitedForMs: queue.rateLimitedForMs,
    ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC,
    etaSeconds,
    queueAvailable: queue.available,
    userIds: ids,
  };
}

/** `errors`: a message per field (`form` for the whole form); the page words them. */
export type RefreshActionResult =
  | { ok: false; errors: Record<string, Message> }
  | { ok: true; preview: RefreshPreview }
  | { ok: true; runId: number; queued: boolean; message: Message };

/** Preview (nothing written) or start (a run, audited, handed to the maintenance queue). */
export async function runRefreshAction(request: Request, who: SignedIn, form: FormData): Promise<RefreshActionResult> {
  const parsed = RefreshFormSchema.safeParse({
    intent: form.get('intent'),
    scope: form.get('scope'),
    userIds: form.getAll('userId').filter((v): v is string => typeof v === 'string'),
    requestId: typeof form.get('requestId') === 'string' && form.get('requestId') ? form.get('requestId') : undefined,
  });
  if (!parsed.success) {
    const errors: Record<string, Message> = {};
    for (const i of parsed.error.issues) {
      // Our schema's messages are catalogue keys; an issue zod words itself is a malformed form.
      const code = /^refresh:/.test(i.message) ? i.message : 'refresh:errors.form_invalid';
      errors[String(i.path[0] ?? 'form')] ??= code === 'refresh:errors.over_limit' ? { code, values: { max: MAX_SELECTED } } : { code };
    }
    return { ok: false, errors };
  }
  const p = parsed.data;
  if (p.scope === 'selected' && p.userIds.length === 0) return { ok: false, errors: { userIds: { code: 'refresh:errors.none_selected' } } };
  const preview = await previewRefresh(p.scope, p.userIds);
  if (p.intent === 'preview') return { ok: true, preview };

  if (!p.requestId) return { ok: false, errors: { form: { code: 'refresh:errors.no_request_id' } } };
  if (preview.calls === 0) {
    return { ok: false, errors: { form: { code: p.scope === 'all' ? 'refresh:errors.nothing_stale' : 'refresh:errors.none_in_capa' } } };
  }
  const { db, env, queues } = await services();
  const requestId = p.requestId;
  // The run and its customers in one transaction (never a run with half its customers), stored
  // before it is queued: if Redis is down, the next scheduled scan queues it.
  let outcome: { run: RefreshRun; created: boolean };
  try {
    outcome = await db.transaction().execute(async (trx) => {
      const r = await createRun(trx, {
        kind: p.scope === 'all' ? 'all_stale' : 'selected',
        requestedBy: who.operator.id,
        requestId,
        ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC,
        etaSeconds: preview.etaSeconds,
        skipped: preview.notInCapa,
      });
      if (r.created && p.scope === 'selected') await addRunUsers(trx, r.run.id, preview.userIds);
      return r;
    });
  } catch (err) {
    // Two submits of one form raced on the request id: the other one started the run.
    const existing = await findRunByRequestId(db, requestId);
    if (!existing) throw err;
    outcome = { run: existing, created: false };
  }
  const { run, created } = outcome;
  if (!created) return { ok: true, runId: run.id, queued: true, message: { code: 'refresh:messages.already_started' } };
  let queued = true;
  try {
    await queues.add(refreshRun, { runId: run.id });
  } catch {
    queued = false;
  }
  await auditAction(request, who, {
    action: p.scope === 'all' ? AUDIT_ACTIONS.refreshAllStale : AUDIT_ACTIONS.refreshSelected,
    targetType: 'refresh_run',
    targetId: String(run.id),
    outcome: 'queued',
    detail: {
      calls: preview.calls,
      notInCapa: preview.notInCapa,
      etaSeconds: preview.etaSeconds,
      ratePerSec: env.CAPA_RATE_LIMIT_PER_SEC,
      ...(queued ? {} : { redis: 'unavailable' }),
    },
  });
  return {
    ok: true,
    runId: run.id,
    queued,
    message: queued
      ? { code: 'refresh:messages.started', values: { count: preview.calls, etaSeconds: preview.etaSeconds } }
      : { code: 'refresh:messages.recorded_queue_down' },
  };
}

export async function refreshRunData(runId: number) {
  const { db } = await services();
  const run = await getRun(db, runId);
  if (!run) return null;
  const view = await withProgress(run);
  const drift = await driftForRun(db, runId, 100);
  const requestedBy = run.requestedBy ? await findOperatorById(db, run.requestedBy) : undefined;
  return { run: { ...view, error: runErrorMessage(view.error) }, drift, requestedBy: requestedBy?.name ?? null };
}

// ------------------------------------------------------------------ the customer's timeline

/** Drift found for the customer and links of theirs that expired, on the customer's timeline. */
export const driftTimelineSource: TimelineSource = async ({ db, user }) => {
  const [drift, expired] = await Promise.all([driftForUser(db, user.id), expiredLinksForUser(db, user.id)]);
  const fact = (key: string) => ({ code: `drift:timeline.facts.${key}` });
  const entries: TimelineEntry[] = drift.map((d) => {
    // The first missed event's evidence is the entry's detail; any others follow as facts.
    const [first, ...more] = evidenceParts(d.evidence) ?? [];
    return {
      key: `drift:${d.id}`,
      at: d.detectedAt,
      kind: 'drift',
      title: { code: 'drift:timeline.title', values: { now: d.nowState, was: d.wasState } },
      detail: first ?? null,
      tone: 'warn',
      facts: [
        [fact('detected_by'), d.jobId ? `${d.jobName} (${d.jobId})` : d.jobName],
        ...(d.triggeredBy ? ([[fact('asked_by'), d.triggeredBy]] as TimelineFact[]) : []),
        ...(d.missedEvents ? ([[fact('likely_missed'), d.missedEvents.replace(/,/g, ', ')]] as TimelineFact[]) : []),
        ...more.map((m): TimelineFact => [fact('evidence'), m]),
      ],
    };
  });
  for (const l of expired) {
    entries.push({
      key: `link-expired:${l.id}`,
      at: l.endedAt ?? l.createdAt,
      kind: 'link',
      title: { code: 'drift:timeline.link_expired' },
      detail: { code: 'drift:timeline.link_expired_detail', values: { issuedAt: l.createdAt } },
      tone: 'warn',
    });
  }
  return entries;
};
