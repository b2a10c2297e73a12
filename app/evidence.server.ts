import { createHash } from 'node:crypto';
import { z } from 'zod';
import { fetchKycMedia } from '../capa/media.js';
import type { KycDetails } from '../capa/types.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { latestDetails } from '../db/repositories/details.js';
import { erasuresForUser, setLegalHold } from '../db/repositories/erasure.js';
import { erasuresOfRuns, listRetentionRuns, type StateCounts } from '../db/repositories/retention.js';
import { KYC_STATES } from '../domain/kyc-states.js';
import { retentionPolicy } from '../domain/retention.js';
import { readMessages } from '../lib/stored-message.js';
import { findUserById } from '../db/repositories/users.js';
import { eraseCustomer } from '../jobs/erasure.js';
import { listMessages, type MessageListQuery } from '../db/repositories/notifications.js';
import { iterateUsersList } from '../db/repositories/users-list.js';
import { csvStream } from '../lib/csv.js';
import type { TFunction } from '../lib/i18n.js';
import type { ActionResult } from './action-result';
import { auditAction, canSeePii, type SignedIn } from './auth.server';
import { i18nFor } from './i18n.server';
import { parseMessageParams, reasonParts } from './notifications.server';
import { reviewQueue } from './review/cases.server';
import { parseQueueParams, slaTargets } from './review.server';
import { DOCUMENT_KINDS, isDocumentKind } from './documents';
import { services } from './services.server';
import { parseListParams } from './users.server';

/**
 * Evidence and data protection: list exports (users, review queue, notifications ledger) that hand
 * over exactly what the list shows under the same query string — every page, not just one.
 */

export type ExportList = 'users' | 'review' | 'notifications';

const USER_COLUMNS = [
  'id',
  'external_user_id',
  'email',
  'alias',
  'type',
  'country',
  'state',
  'state_code',
  'state_changed_at',
  'capa_user_id',
  'assignee',
  'created_at',
  'url',
] as const;
const REVIEW_COLUMNS = [
  'user_id',
  'external_user_id',
  'email',
  'alias',
  'country',
  'state',
  'state_code',
  'case_status',
  'assignee',
  'queued_at',
  'waiting_on',
  'sla_breached',
  'open_tasks',
  'next_due',
  'url',
] as const;
const MESSAGE_COLUMNS = [
  'id',
  'user_id',
  'external_user_id',
  'kind',
  'channel',
  'locale',
  'address',
  'status',
  'attempts',
  'step',
  'subject',
  'reason',
  'created_at',
  'sent_at',
  'failed_at',
  'cancelled_at',
] as const;

async function* mapRows<T>(src: AsyncIterable<T>, f: (r: T) => readonly unknown[]): AsyncGenerator<readonly unknown[]> {
  for await (const r of src) yield f(r);
}

async function* arrayRows<T>(rows: readonly T[]): AsyncGenerator<T> {
  yield* rows;
}

/** Every ledger row the list shows under `q`, a thousand at a time. */
async function* allMessages(q: MessageListQuery) {
  const { db } = await services();
  for (let page = 1; ; page++) {
    const { rows } = await listMessages(db, { ...q, page, pageSize: 1000 });
    yield* rows;
    if (rows.length < 1000) return;
  }
}

const yesNo = (t: TFunction, v: boolean) => t(v ? 'common:words.yes' : 'common:words.no');
const state = (t: TFunction, s: string) => t(`common:states.${s}`);

/**
 * The CSV of one list under the list's own query string (paging and page size ignored: every
 * matching row). Compliance and above only — an export is the whole list's personal data at once,
 * so it is never masked and viewers get none. Audited with the list and its filters before the
 * first byte leaves.
 */
export async function listExportResponse(request: Request, who: SignedIn, list: ExportList): Promise<Response> {
  const { db, env } = await services();
  const sp = new URL(request.url).searchParams;
  const { t } = await i18nFor(request, 'evidence');
  const base = env.publicUrl;
  const now = Date.now();
  let header: readonly string[];
  let rows: AsyncIterator<readonly unknown[]>;
  let filters: Record<string, unknown>;
  if (list === 'users') {
    const { page: _p, pageSize: _s, ...q } = parseListParams(sp);
    filters = q;
    header = USER_COLUMNS.map((c) => t(`export.columns.users.${c}`));
    rows = mapRows(iterateUsersList(db, q), (r) => [
      r.id,
      r.externalUserId,
      r.email,
      r.alias,
      r.type,
      r.country,
      state(t, r.kycState),
      r.kycState,
      r.kycStateChangedAt,
      r.capaUserId,
      r.assigneeName,
      r.createdAt,
      `${base}/users/${r.id}`,
    ]);
  } else if (list === 'review') {
    const { page: _p, ...q } = parseQueueParams(sp);
    filters = q;
    const all = await reviewQueue(db, {
      filters: q,
      operatorId: who.operator.id,
      now,
      targets: slaTargets(env),
      page: 0,
      pageSize: Number.MAX_SAFE_INTEGER,
    });
    header = REVIEW_COLUMNS.map((c) => t(`export.columns.review.${c}`));
    rows = mapRows(arrayRows(all.rows), (r) => [
      r.userId,
      r.externalUserId,
      r.email,
      r.alias,
      r.country,
      state(t, r.kycState),
      r.kycState,
      t(`review:statuses.${r.caseStatus}`),
      r.assigneeName,
      r.queuedAt,
      r.sla.waitingOn ? t(`review:who.${r.sla.waitingOn}`) : '',
      yesNo(t, r.sla.breached),
      r.openTasks,
      r.nextDue,
      `${base}/users/${r.userId}`,
    ]);
  } else {
    const { page: _p, pageSize: _s, ...q } = parseMessageParams(sp);
    filters = q;
    header = MESSAGE_COLUMNS.map((c) => t(`export.columns.notifications.${c}`));
    rows = mapRows(allMessages({ ...q, page: 1, pageSize: 1000 }), (m) => [
      m.id,
      m.userId,
      m.externalUserId,
      t(`notifications:kinds.${m.kind}`),
      t(`notifications:channels.${m.channel}`),
      m.locale,
      m.address,
      t(`notifications:statuses.${m.status}`),
      m.attempts,
      m.step,
      m.subject,
      m.failureReason
        ? reasonParts(m.failureReason)
            .map((p) => t(p.code, p.values))
            .join(': ')
        : '',
      m.createdAt,
      m.sentAt,
      m.failedAt,
      m.cancelledAt,
    ]);
  }
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.evidenceListExport,
    targetType: 'list',
    targetId: list,
    outcome: 'ok',
    detail: { filters },
  });
  const stamp = new Date(now).toISOString().slice(0, 19).replace(/[:T]/g, '-');
  return new Response(csvStream(header, rows), {
    status: 200,
    headers: {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="kyc-desk-${list}-${stamp}.csv"`,
      'cache-control': 'no-store',
    },
  });
}

// ------------------------------------------------------------------ documents

const MEDIA_MAX_BYTES = 25 * 1024 * 1024;

/**
 * GET /users/:id/documents/:kind — one KYC document or selfie, fetched server-side from where the
 * latest result says it is and passed through. Viewers are refused (the masking rules withhold
 * media from them) and the refusal is audited like every view.
 */
export async function documentResponse(request: Request, who: SignedIn, userId: string, kind: string): Promise<Response> {
  const { db, dataKeys, env } = await services();
  if (!isDocumentKind(kind)) throw new Response('evidence:documents.unknown_kind', { status: 404 });
  const user = await findUserById(db, userId);
  if (!user) throw new Response('evidence:documents.not_found', { status: 404 });
  const audit = (outcome: 'ok' | 'denied' | 'error', detail: Record<string, unknown>) =>
    auditAction(request, who, {
      action: AUDIT_ACTIONS.evidenceDocument,
      targetType: 'user',
      targetId: userId,
      outcome,
      detail: { kind, ...detail },
    });
  if (!canSeePii(who.operator.role)) {
    await audit('denied', { role: who.operator.role });
    throw new Response('evidence:documents.withheld_error', { status: 403 });
  }
  const details = await latestDetails<KycDetails>(db, userId, dataKeys).catch(() => undefined);
  const url = details?.details.media?.[DOCUMENT_KINDS[kind]];
  if (typeof url !== 'string' || !url) throw new Response('evidence:documents.not_found', { status: 404 });
  const got = await fetchKycMedia(url, {
    capaBaseUrl: env.capaBaseUrl,
    apiKey: env.CAPA_API_KEY,
    timeoutMs: Math.min(env.CAPA_TIMEOUT_MS, 8000),
    maxBytes: MEDIA_MAX_BYTES,
  });
  if (!got.ok) {
    await audit('error', { code: got.code });
    throw new Response(`evidence:documents.${got.code}`, { status: got.code === 'not_found' ? 404 : 502 });
  }
  await audit('ok', {});
  return new Response(got.body, {
    headers: {
      'content-type': got.contentType,
      ...(got.length !== null ? { 'content-length': String(got.length) } : {}),
      // Personal data: not kept by shared caches or on disk, never sniffed as something else.
      'cache-control': 'private, no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'content-disposition': `inline; filename="${kind}"`,
    },
  });
}

// ------------------------------------------------------------------ legal hold and erasure

/** The erasure page (admin): the tombstone's non-personal facts, the hold, and every erasure report. */
export async function erasurePageData(userId: string) {
  const { db } = await services();
  const user = await findUserById(db, userId);
  if (!user) throw new Response('evidence:erasure.not_found', { status: 404 });
  const erasures = await erasuresForUser(db, userId);
  return {
    user: { id: user.id, externalUserId: user.externalUserId, kycState: user.kycState, erasedAt: user.erasedAt ?? null },
    legalHold: Boolean(user.legalHold),
    legalHoldReason: user.legalHoldReason ?? null,
    erasures: erasures.map((e) => ({
      id: e.id,
      at: e.at,
      kind: e.kind,
      // The retention job's reason is a catalogue code; an admin's is their own free text, not shown here.
      reason: e.kind === 'retention' ? (readMessages(e.reason)?.[0] ?? null) : null,
      runId: e.runId ?? null,
      report: JSON.parse(e.report) as Record<string, number>,
    })),
  };
}

const RUNS_SHOWN = 30;
const CUSTOMERS_SHOWN_PER_RUN = 100;

/**
 * /audit/retention (compliance+): the policy in force and the retention job's latest runs — when,
 * what each erased and kept on hold per KYC state, failures, and the customers erased (ids only:
 * what is left of them is a tombstone).
 */
export async function retentionPageData() {
  const { db, env } = await services();
  const policy = retentionPolicy(env);
  const runs = await listRetentionRuns(db, RUNS_SHOWN);
  const customers = await erasuresOfRuns(
    db,
    runs.map((r) => r.id),
    CUSTOMERS_SHOWN_PER_RUN,
  );
  const total = (c: StateCounts) => Object.values(c).reduce((a, b) => a + (b ?? 0), 0);
  return {
    policy: KYC_STATES.map((state) => ({ state, years: policy[state] })),
    customersShown: CUSTOMERS_SHOWN_PER_RUN,
    runs: runs.map((r) => {
      const erased = JSON.parse(r.erased) as StateCounts;
      const held = JSON.parse(r.held) as StateCounts;
      return {
        id: r.id,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        policy: JSON.parse(r.policy) as StateCounts,
        erased,
        erasedTotal: total(erased),
        held,
        heldTotal: total(held),
        failed: r.failed,
        customers: (customers.get(r.id) ?? []).map((e) => ({ userId: e.userId, at: e.at })),
      };
    }),
  };
}

const reason = z
  .string({ required_error: 'evidence:erasure.reason_missing' })
  .trim()
  .min(3, 'evidence:erasure.reason_missing')
  .max(1000, 'evidence:erasure.reason_too_long');
export const ErasureActionSchema = z.discriminatedUnion('intent', [
  z.object({ intent: z.literal('hold'), reason }),
  z.object({ intent: z.literal('release') }),
  z.object({
    intent: z.literal('erase'),
    reason,
    confirm: z.literal('yes', { errorMap: () => ({ message: 'evidence:erasure.confirm_missing' }) }),
  }),
]);

// The audit log is append-only: it keeps a hash of the operator's free text, never the text (which
// may name the customer); the reason itself stays on the hold / the erasure record.
const digest = (s: string) => createHash('sha256').update(s).digest('hex');

/** Legal hold on/off and erasure (admin). Every attempt is audited with its outcome. */
export async function runErasureAction(request: Request, who: SignedIn, userId: string, form: FormData): Promise<ActionResult> {
  const { db } = await services();
  const parsed = ErasureActionSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { tone: 'error', code: parsed.error.issues[0]?.message ?? 'evidence:erasure.invalid' };
  const input = parsed.data;
  if (!(await findUserById(db, userId))) throw new Response('evidence:erasure.not_found', { status: 404 });
  if (input.intent === 'hold' || input.intent === 'release') {
    await setLegalHold(db, userId, input.intent === 'hold', input.intent === 'hold' ? input.reason : null);
    await auditAction(request, who, {
      action: AUDIT_ACTIONS.evidenceLegalHold,
      targetType: 'user',
      targetId: userId,
      outcome: 'ok',
      detail: input.intent === 'hold' ? { on: true, reasonSha256: digest(input.reason) } : { on: false },
    });
    return { tone: 'ok', code: input.intent === 'hold' ? 'evidence:erasure.held' : 'evidence:erasure.released' };
  }
  const r = await eraseCustomer(db, userId, { kind: 'request', reason: input.reason, requestedBy: who.operator.id });
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.evidenceErasure,
    targetType: 'user',
    targetId: userId,
    outcome: r.code === 'erased' ? 'ok' : 'denied',
    detail: r.code === 'erased' ? { erasureId: r.erasureId, report: r.report, reasonSha256: digest(input.reason) } : { refused: r.code },
  });
  return r.code === 'erased'
    ? { tone: 'ok', code: 'evidence:erasure.erased' }
    : { tone: 'error', code: `evidence:erasure.refused_${r.code}` };
}
