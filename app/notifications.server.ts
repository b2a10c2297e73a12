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
import { defaultLocale, LOCALES, render, SAMPLE_VARS, TemplateError } from '../jobs/notifications/templates.js';
import { auditAction, canSeePii, type SignedIn } from './auth.server';
import { dayEnd, dayStart, pageCount, parsePaging, parseSorting } from './list-params.server';
import { maskEmail, maskUrl } from './pii';
import { services } from './services.server';
import type { TimelineEntry, TimelineSource } from './timeline-entry';

/** The notifications screens' facade: list + filters, preview, resend, stop, conversion. */

async function deps(): Promise<NotifyDeps> {
  const s = await services();
  return { db: s.db, enqueue: s.queues, env: s.env, logger: s.logger, dataKeys: s.dataKeys };
}

export const KIND_LABEL: Record<NotificationKind, string> = {
  kyc_link: 'Verification link',
  kyc_retry: 'Not approved — try again',
  kyc_retry_reminder: 'Reminder — try again',
  alert_firing: 'Alert',
  alert_resolved: 'Alert resolved',
};

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
    kindLabel: KIND_LABEL[m.kind],
    channel: m.channel,
    locale: m.locale,
    address: pii ? m.address : maskEmail(m.address),
    linkUrl: m.linkUrl ? (pii ? m.linkUrl : maskUrl(m.linkUrl)) : null,
    status: m.status,
    reason: m.failureReason,
    lastError: m.lastError,
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
    if (!m) return { ok: false as const, error: 'No message with this id.' };
    // Alert messages go to operators, worded by jobs/alerts/messages.ts rather than these templates.
    if (isAlertKind(m.kind)) return { ok: false as const, error: 'Alert messages have no customer template.' };
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
        labels: KIND_LABEL,
      };
    } catch (err) {
      return { ok: false as const, error: err instanceof TemplateError ? err.message : 'This message cannot be rendered.' };
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
    labels: KIND_LABEL,
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

export type ActionResult = { ok: true; message: string } | { ok: false; message: string };

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
  if (!original) return { ok: false, message: 'That message no longer exists.' };
  const user = original.userId ? await findUserById(d.db, original.userId) : undefined;
  if (!user) return { ok: false, message: 'The customer of that message no longer exists.' };
  if (user.kycState === 'VERIFIED') return { ok: false, message: 'This customer is already verified; nothing to resend.' };
  if (user.type !== 'INDIVIDUAL') return { ok: false, message: 'Only individual customers get KYC links.' };
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
    action: 'notification.resend',
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
  if (row.status === 'failed') return { ok: false, message: `Not sent: ${row.failureReason}` };
  if (!created) return { ok: true, message: 'Already queued (this form was submitted before).' };
  return {
    ok: true,
    message: usable
      ? 'Queued: the customer will get the message with their current link.'
      : 'Queued: a new link is being generated and will be e-mailed.',
  };
}

export async function stopProgrammeAction(request: Request, who: SignedIn, programmeId: string): Promise<ActionResult> {
  const d = await deps();
  const p = await getProgramme(d.db, programmeId);
  if (!p) return { ok: false, message: 'That follow-up programme does not exist.' };
  if (p.status !== 'active')
    return { ok: false, message: `This programme is already ${p.status}${p.stopReason ? ` (${p.stopReason})` : ''}.` };
  const n = await stopProgrammesForUser(d, p.userId, 'operator', who.operator.id);
  await auditAction(request, who, {
    action: 'notification.programme.stop',
    targetType: 'user',
    targetId: p.userId,
    outcome: n > 0 ? 'ok' : 'error',
    detail: { programme: p.id },
  });
  return n > 0
    ? { ok: true, message: 'Follow-ups stopped; unsent reminders were cancelled.' }
    : { ok: false, message: 'This programme had already ended.' };
}

// ------------------------------------------------------------------ user timeline

/** Messages sent (or not) to the customer, on the user page's timeline. Addresses masked for viewers. */
export const messagesTimelineSource: TimelineSource = async ({ db, user, canSeePii: pii }) => {
  const rows = await notificationsForUser(db, user.id);
  return rows.map((m): TimelineEntry => {
    const facts: Array<[string, string]> = [
      ['channel', m.channel],
      ['to', pii ? m.address : maskEmail(m.address)],
      ['status', m.status],
      ['attempts', String(m.attempts)],
      ['language', m.locale],
    ];
    if (m.linkUrl) facts.push(['link', pii ? m.linkUrl : maskUrl(m.linkUrl)]);
    if (m.step !== null) facts.push(['programme step', String(m.step)]);
    return {
      key: `message:${m.id}`,
      at: m.sentAt ?? m.failedAt ?? m.cancelledAt ?? m.createdAt,
      kind: 'message',
      title: `E-mail "${KIND_LABEL[m.kind]}" — ${m.status}`,
      detail: m.failureReason ?? m.lastError,
      tone: m.status === 'sent' ? 'ok' : m.status === 'failed' ? 'error' : m.status === 'cancelled' ? 'warn' : 'info',
      facts,
    };
  });
};
