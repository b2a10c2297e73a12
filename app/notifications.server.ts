import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { z } from 'zod';
import { activeLink } from '../db/repositories/links.js';
import {
  conversion,
  countsByStatus,
  getMessage,
  getProgramme,
  listMessages,
  notificationsForUser,
  type MessageListQuery,
} from '../db/repositories/notifications.js';
import { findUserById } from '../db/repositories/users.js';
import {
  NOTIFICATION_CHANNELS,
  NOTIFICATION_KINDS,
  NOTIFICATION_STATUSES,
  isAlertKind,
  type Notification,
  type NotificationKind,
  type NotificationLocale,
} from '../db/schema.js';
import { queueMessage, stopProgrammesForUser, type NotifyDeps } from '../jobs/notifications/programme.js';
import { defaultLocale, LOCALES, render, SAMPLE_VARS } from '../jobs/notifications/templates.js';
import { auditAction, canSeePii, type SignedIn } from './auth.server';
import { dayEnd, dayStart, pageCount, parsePaging, parseSorting } from './list-params.server';
import { maskEmail, maskUrl } from './pii';
import { services } from './services.server';
import type { Message } from './action-result';
import type { TimelineEntry, TimelineFact, TimelineSource } from './timeline-entry';

/** The notifications screens' facade: list + filters, preview, resend, stop, conversion. */

async function deps(): Promise<NotifyDeps> {
  const s = await services();
  return { db: s.db, enqueue: s.queues, env: s.env, logger: s.logger, dataKeys: s.dataKeys };
}

const SORTS = ['createdAt', 'status', 'kind', 'attempts'] as const;

/** URL → query; anything malformed is dropped (a shared link always opens). */
export function parseMessageParams(sp: URLSearchParams): MessageListQuery {
  const pick = <T extends string>(v: string | null, allowed: readonly T[]): T | null =>
    (allowed as readonly string[]).includes(v ?? '') ? (v as T) : null;
  return {
    status: pick(sp.get('status'), NOTIFICATION_STATUSES),
    kind: pick(sp.get('kind'), NOTIFICATION_KINDS),
    channel: pick(sp.get('channel'), NOTIFICATION_CHANNELS),
    userId: sp.get('user')?.slice(0, 100) || null,
    q: sp.get('q')?.slice(0, 200) || null,
    from: dayStart(sp.get('from')),
    to: dayEnd(sp.get('to')),
    ...parseSorting(sp, SORTS, 'createdAt'),
    ...parsePaging(sp, { sizes: [10, 25, 50, 100], defaultSize: 25 }),
  };
}

function present(m: Notification & { externalUserId?: string; kycState?: string }, pii: boolean) {
  return {
    id: m.id,
    userId: m.userId,
    externalUserId: m.externalUserId ?? null,
    kycState: m.kycState ?? null,
    kind: m.kind,
    channel: m.channel,
    locale: m.locale,
    address: pii ? m.address : maskEmail(m.address),
    linkUrl: m.linkUrl ? (pii ? m.linkUrl : maskUrl(m.linkUrl)) : null,
    status: m.status,
    reason: m.failureReason ? reasonParts(m.failureReason) : null,
    lastError: m.lastError ? reasonParts(m.lastError) : null,
    attempts: m.attempts,
    step: m.step,
    programmeId: m.programmeId,
    subject: m.subject,
    createdAt: m.createdAt,
    sentAt: m.sentAt,
    failedAt: m.failedAt,
    cancelledAt: m.cancelledAt,
    createdBy: m.createdBy,
  };
}

// ------------------------------------------------------------------ stored reasons

/**
 * The ledger's reasons (why a message failed or was cancelled, why a programme stopped) are
 * written by the jobs as short English text, often one inside another ("programme stopped:
 * message not delivered: gave up after 3 attempt(s): SMTP 550 …"). Read back as a chain of
 * messages (catalogue `notifications:reasons.*`) the page words and joins in the reader's
 * language; what a mail server answered stays as it came. Text nobody classified reads back as it is.
 */
const REASON_RULES: Array<[RegExp, string, string[]?, number?]> = [
  // [pattern, code, names of the captured values, index of a capture that is itself a reason]
  [/^programme stopped: ([\s\S]+)$/, 'programme_stopped', [], 1],
  [/^message not delivered: ([\s\S]+)$/, 'not_delivered', [], 1],
  [/^gave up after (\d+) attempt\(s\): ([\s\S]+)$/, 'gave_up', ['count'], 2],
  [/^attempt (\d+): ([\s\S]+)$/, 'attempt', ['number'], 2],
  [/^customer not found$/, 'customer_not_found'],
  [/^customer is already ([A-Z_]+)$/, 'already_in_state', ['state']],
  [/^its link was (\w+) by a newer one$/, 'link_replaced'],
  [/^no channel (\S+)$/, 'no_channel', ['channel']],
  [/^no channel$/, 'no_channel_at_all'],
  [/^no e-mail address$/, 'no_address'],
  [/^not a valid e-mail address: /, 'invalid_address'],
  [/^could not render: ([\s\S]*)$/, 'render_failed', ['detail']],
  [/^an earlier attempt was interrupted while sending/, 'interrupted'],
  [/^SMTP (\d{3})(?: at ([A-Z ]+))? \(temporary\): ([\s\S]*)$/, 'smtp_temporary', ['code', 'command', 'detail']],
  [/^SMTP (\d{3})(?: at ([A-Z ]+))?: ([\s\S]*)$/, 'smtp_refused', ['code', 'command', 'detail']],
  [/^refused address: ([\s\S]*)$/, 'address_refused', ['detail']],
  [/^recipient refused: ([\s\S]*)$/, 'recipient_refused', ['detail']],
  [/^SMTP authentication failed: ([\s\S]*)$/, 'smtp_auth', ['detail']],
  [/^SMTP unreachable or failed: ([\s\S]*)$/, 'smtp_unreachable', ['detail']],
  [/^e-mail is not configured: set SMTP_URL$/, 'email_not_configured'],
  [/^SMS is not available yet$/, 'sms_unavailable'],
  [/^customer started KYC$/, 'customer_started'],
  [/^customer verified$/, 'customer_verified'],
  [/^customer submitted KYC \(in review\)$/, 'customer_submitted'],
  [/^operator$/, 'stopped_by_operator'],
  [/^all follow-ups sent$/, 'all_sent'],
  [/^the customer has no country \(MX or DO\)/, 'no_country'],
  [/^no KYC link could be generated/, 'no_link'],
  [/^no KYC link was generated within a day/, 'no_link_in_a_day'],
  [/^stopped$/, 'stopped'],
  [/^failed$/, 'failed'],
  [/^the verification link is not a valid URL$/, 'link_invalid'],
  [/^the verification link must be http\(s\)/, 'link_invalid'],
  [/^no template for (\S+) in (\S+)$/, 'no_template', ['kind', 'locale']],
  // Alert messages (to operators) share the ledger.
  [/^the alert this message is about no longer exists$/, 'alert_gone'],
  [/^no alert webhook is configured any more/, 'alert_webhook_unconfigured'],
  [/^webhook unreachable: ([\s\S]*)$/, 'webhook_unreachable', ['detail']],
  [/^webhook answered HTTP (\d{3})$/, 'webhook_refused_bare', ['status']],
  [/^webhook answered HTTP (\d{3}): ([\s\S]*)$/, 'webhook_refused', ['status', 'detail']],
];

export function reasonParts(text: string): Message[] {
  const t = text.trim();
  for (const [re, code, names = [], nested] of REASON_RULES) {
    const m = re.exec(t);
    if (!m) continue;
    const values: Record<string, string | number> = {};
    names.forEach((n, i) => {
      const v = m[i + 1];
      // Counts are numbers, so the catalogue picks the plural.
      if (v !== undefined) values[n] = n === 'count' || n === 'number' ? Number(v) : v;
    });
    const head: Message = { code: `notifications:reasons.${code}`, ...(Object.keys(values).length ? { values } : {}) };
    return nested ? [head, ...reasonParts(m[nested]!)] : [head];
  }
  return t ? [{ code: 'notifications:reasons.other', values: { text: t } }] : [];
}

export async function notificationsListData(who: SignedIn, sp: URLSearchParams) {
  const { db } = await services();
  const q = parseMessageParams(sp);
  const convFrom = sp.get('cfrom');
  const convTo = sp.get('cto');
  const [list, counts, conv] = await Promise.all([
    listMessages(db, q),
    countsByStatus(db),
    conversion(db, { from: dayStart(convFrom), to: dayEnd(convTo) }),
  ]);
  const pii = canSeePii(who.operator.role);
  return {
    rows: list.rows.map((r) => present(r, pii)),
    total: list.total,
    page: q.page,
    pageSize: q.pageSize,
    pageCount: pageCount(list.total, q.pageSize),
    counts,
    conversion: conv,
    params: { ...q, from: sp.get('from') ?? '', to: sp.get('to') ?? '', cfrom: convFrom ?? '', cto: convTo ?? '' },
  };
}

// ------------------------------------------------------------------ preview

export const PreviewSchema = z.object({
  kind: z.enum(NOTIFICATION_KINDS).default('kyc_link'),
  locale: z.enum(['es', 'en']).default('es'),
});

/** Renders a template with sample data, or exactly what a ledger message carries (?message=). */
export async function previewData(who: SignedIn, sp: URLSearchParams) {
  const messageId = sp.get('message');
  if (messageId) {
    const { db } = await services();
    const m = await getMessage(db, messageId.slice(0, 100));
    if (!m) return { ok: false as const, error: 'notifications:preview.no_message' };
    // Alert messages go to operators, worded by jobs/alerts/messages.ts rather than these templates.
    if (isAlertKind(m.kind)) return { ok: false as const, error: 'notifications:preview.alert_no_template' };
    // Alert messages go to operators, worded by jobs/alerts/messages.ts rather than these templates.
    if (isAlertKind(m.kind)) return { ok: false as const, error: 'notifications:preview.cannot_render' };
    const user = m.userId ? await findUserById(db, m.userId) : undefined;
    const pii = canSeePii(who.operator.role);
    // Viewers see the template with sample data, not the customer's name and link.
    const vars = pii ? { name: user?.alias ?? null, linkUrl: m.linkUrl ?? SAMPLE_VARS[m.locale].linkUrl } : SAMPLE_VARS[m.locale];
    try {
      return {
        ok: true as const,
        kind: m.kind,
        locale: m.locale,
        message: present(m, pii),
        rendered: render(m.kind, m.locale, vars),
        kinds: NOTIFICATION_KINDS,
        locales: LOCALES,
      };
    } catch {
      // A template that cannot render this message (TemplateError or worse): the page says so.
      return { ok: false as const, error: 'notifications:preview.cannot_render' };
    }
  }
  const parsed = PreviewSchema.safeParse({ kind: sp.get('kind') ?? undefined, locale: sp.get('locale') ?? undefined });
  const { kind, locale } = parsed.success ? parsed.data : { kind: 'kyc_link' as const, locale: 'es' as const };
  return {
    ok: true as const,
    kind,
    locale,
    message: null,
    rendered: render(kind, locale, SAMPLE_VARS[locale]),
    kinds: NOTIFICATION_KINDS,
    locales: LOCALES,
  };
}

// ------------------------------------------------------------------ operator actions

export const NotificationActionSchema = z.discriminatedUnion('intent', [
  z.object({
    intent: z.literal('resend'),
    messageId: z.string().trim().min(1).max(100),
    locale: z.enum(['es', 'en', '']).optional(),
    requestId: z
      .string()
      .trim()
      .min(8)
      .max(100)
      .regex(/^[A-Za-z0-9_-]+$/),
  }),
  z.object({
    intent: z.literal('stop'),
    programmeId: z.string().trim().min(1).max(100),
  }),
]);

/** A toast: whether it worked and a message code (`notifications:actions.*`); `reason` words a stored reason, part by part. */
export type ActionResult = { ok: boolean; code: string; values?: Record<string, string>; reason?: Message[] };

const act = (ok: boolean, key: string, extra: Omit<ActionResult, 'ok' | 'code'> = {}): ActionResult => ({
  ok,
  code: `notifications:actions.${key}`,
  ...extra,
});

/**
 * Resend by hand: a new ledger message (same kind; reminders resend as the retry message) to the
 * customer's current address, with the active link or — without one — a fresh link. Keyed by
 * the form's request id: a double click sends once. Audited.
 */
export async function resendMessage(
  request: Request,
  who: SignedIn,
  input: { messageId: string; locale?: string; requestId: string },
): Promise<ActionResult> {
  const d = await deps();
  const original = await getMessage(d.db, input.messageId);
  if (!original) return act(false, 'message_gone');
  const user = original.userId ? await findUserById(d.db, original.userId) : undefined;
  if (!user) return act(false, 'customer_gone');
  if (user.kycState === 'VERIFIED') return act(false, 'already_verified');
  if (user.type !== 'INDIVIDUAL') return act(false, 'not_individual');
  const link = await activeLink(d.db, user.id);
  const usable = link && !user.linkExpired ? { id: link.id, url: link.url } : null;
  const kind: NotificationKind = original.kind === 'kyc_link' ? 'kyc_link' : 'kyc_retry';
  const locale = (
    input.locale === 'es' || input.locale === 'en' ? input.locale : (original.locale ?? defaultLocale(user.country))
  ) as NotificationLocale;
  const { row, created } = await queueMessage(d, {
    user,
    kind,
    locale,
    dedupeKey: `resend:${input.requestId}`,
    link: usable ?? { fresh: `resend-${input.requestId}` },
    cause: `operator:${who.operator.id}`,
    createdBy: who.operator.id,
  });
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.notificationResend,
    targetType: 'user',
    targetId: user.id,
    outcome: row.status === 'failed' ? 'error' : 'queued',
    detail: {
      original: original.id,
      message: row.id,
      kind,
      locale,
      freshLink: !usable,
      duplicate: !created,
      ...(row.failureReason ? { reason: row.failureReason } : {}),
    },
  });
  if (row.status === 'failed') return act(false, 'not_sent', { reason: reasonParts(row.failureReason ?? '') });
  if (!created) return act(true, 'already_queued');
  return act(true, usable ? 'queued_current_link' : 'queued_new_link');
}

export async function stopProgrammeAction(request: Request, who: SignedIn, programmeId: string): Promise<ActionResult> {
  const d = await deps();
  const p = await getProgramme(d.db, programmeId);
  if (!p) return act(false, 'no_programme');
  if (p.status !== 'active') {
    return p.stopReason
      ? act(false, 'programme_ended_because', { values: { status: p.status }, reason: reasonParts(p.stopReason) })
      : act(false, 'programme_ended', { values: { status: p.status } });
  }
  const n = await stopProgrammesForUser(d, p.userId, 'operator', who.operator.id);
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.notificationProgrammeStop,
    targetType: 'user',
    targetId: p.userId,
    outcome: n > 0 ? 'ok' : 'error',
    detail: { programme: p.id },
  });
  return n > 0 ? act(true, 'stopped') : act(false, 'already_ended');
}

// ------------------------------------------------------------------ user timeline

/** Messages sent (or not) to the customer, on the user page's timeline. Addresses masked for viewers. */
export const messagesTimelineSource: TimelineSource = async ({ db, user, canSeePii: pii }) => {
  const rows = await notificationsForUser(db, user.id);
  const fact = (key: string) => ({ code: `notifications:timeline.facts.${key}` });
  return rows.map((m): TimelineEntry => {
    const facts: TimelineFact[] = [
      [fact('channel'), { code: `notifications:channels.${m.channel}` }],
      [fact('to'), pii ? m.address : maskEmail(m.address)],
      [fact('status'), { code: `notifications:statuses.${m.status}` }],
      [fact('attempts'), String(m.attempts)],
      [fact('language'), { code: `common:languages.${m.locale}` }],
    ];
    if (m.linkUrl) facts.push([fact('link'), pii ? m.linkUrl : { code: 'notifications:list.link_hidden' }]);
    if (m.step !== null) facts.push([fact('step'), String(m.step)]);
    // The root cause of a failure or cancellation; the entry's status says the rest.
    const why = reasonParts(m.failureReason ?? m.lastError ?? '').at(-1) ?? null;
    return {
      key: `message:${m.id}`,
      at: m.sentAt ?? m.failedAt ?? m.cancelledAt ?? m.createdAt,
      kind: 'message',
      title: { code: 'notifications:timeline.title', values: { kind: m.kind, status: m.status } },
      detail: why,
      tone: m.status === 'sent' ? 'ok' : m.status === 'failed' ? 'error' : m.status === 'cancelled' ? 'warn' : 'info',
      facts,
    };
  });
};
