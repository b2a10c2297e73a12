import { createHash } from 'node:crypto';
import { z } from 'zod';
import { CapaError, describeCapaError } from '../capa/client.js';
import { secretUsageSince } from '../db/repositories/inbox.js';
import { getSetting, putSetting, SETTING_KEYS, type CapaWebhookSetting } from '../db/repositories/settings.js';
import { isoAgo, nowIso } from '../lib/time.js';
import type { ActionResult } from './action-result';
import { auditAction, type SignedIn } from './auth.server';
import { opsCapa } from './capa-client.server';
import { services } from './services.server';

/**
 * Webhook settings (/admin/settings): the URL Capa sends webhooks to, registered at Capa, and the
 * configured webhook secrets with which of them verified recent deliveries.
 */

const SECRET_DOT = '•';

/** A secret as shown: never more than its first and last two characters, plus a fingerprint. */
export function maskSecret(s: string): { masked: string; fingerprint: string; length: number } {
  const masked = s.length >= 16 ? `${s.slice(0, 2)}${SECRET_DOT.repeat(8)}${s.slice(-2)}` : SECRET_DOT.repeat(10);
  return { masked, fingerprint: createHash('sha256').update(s).digest('hex').slice(0, 12), length: s.length };
}

export async function settingsData(_who: SignedIn) {
  const { db, env } = await services();
  const current = await getSetting<CapaWebhookSetting>(db, SETTING_KEYS.capaWebhook);
  // Which secret verified recent deliveries: tells whether a rotation is finished.
  const since = isoAgo(30 * 86_400_000);
  const usage = await secretUsageSince(db, since);
  const byIndex = new Map(usage.map((u) => [u.secretIndex, { lastAt: u.lastAt, count: u.count }]));
  return {
    current: current?.value ?? null,
    suggestedUrl: `${env.publicUrl}/webhooks/capa`,
    capaBaseUrl: env.capaBaseUrl,
    usingSandbox: env.usingSandbox,
    secrets: env.CAPA_WEBHOOK_SECRET.map((s, i) => ({
      index: i,
      ...maskSecret(s),
      lastVerifiedAt: byIndex.get(i)?.lastAt ?? null,
      verified30d: byIndex.get(i)?.count ?? 0,
    })),
    production: env.NODE_ENV === 'production',
  };
}

export const WebhookSettingsSchema = z.discriminatedUnion('intent', [
  z.object({
    intent: z.literal('set-url'),
    url: z
      .string({ required_error: 'Enter the URL Capa should send webhooks to.' })
      .trim()
      .min(1, 'Enter the URL Capa should send webhooks to.')
      .max(2000, 'At most 2000 characters.')
      .url('Enter a full URL, e.g. https://kyc.example.com/webhooks/capa.')
      .refine((u) => /^https?:\/\//i.test(u), 'The URL must start with https:// (or http:// for local testing).'),
  }),
  z.object({
    intent: z.literal('disable'),
    confirm: z.literal('yes', { errorMap: () => ({ message: 'Tick the box to confirm that Capa should stop sending webhooks.' }) }),
  }),
]);

export type SettingsOutcome = ActionResult & { errors?: Record<string, string>; values?: Record<string, string> };

/** Registers the webhook URL at Capa; stores it only once Capa has accepted it. */
export async function saveWebhookSettings(request: Request, who: SignedIn, form: FormData): Promise<SettingsOutcome> {
  const { db, env } = await services();
  const values = Object.fromEntries([...form.entries()].filter(([k, v]) => k !== 'csrf' && typeof v === 'string')) as Record<
    string,
    string
  >;
  const parsed = WebhookSettingsSchema.safeParse(values);
  if (!parsed.success) {
    const errors: Record<string, string> = {};
    for (const i of parsed.error.issues) errors[String(i.path[0] ?? 'form')] ??= i.message;
    return { tone: 'error', message: 'Nothing was sent to Capa: check the form.', errors, values };
  }
  const url = parsed.data.intent === 'set-url' ? parsed.data.url : null;
  if (url && env.NODE_ENV === 'production' && !/^https:\/\//i.test(url)) {
    return {
      tone: 'error',
      message: 'Nothing was sent to Capa: check the form.',
      errors: { url: 'In production the URL must use https://.' },
      values,
    };
  }
  try {
    const s = await (await opsCapa()).setWebhookSettings(url);
    const setting: CapaWebhookSetting = {
      url: s.url ?? url,
      capaId: s.id,
      capaUpdatedAt: s.updatedAt ?? null,
      setAt: nowIso(),
      setBy: who.operator.email,
    };
    await putSetting(db, SETTING_KEYS.capaWebhook, setting, who.operator.id);
    await auditAction(request, who, {
      action: 'settings.capa-webhook',
      targetType: 'setting',
      targetId: SETTING_KEYS.capaWebhook,
      outcome: 'ok',
      detail: { url: setting.url },
    });
    return url
      ? { tone: 'ok', message: `Capa will now send webhooks to ${setting.url}.` }
      : { tone: 'ok', message: 'Capa webhooks are switched off: events are recorded at Capa as NOT_SENT until a URL is set again.' };
  } catch (err) {
    await auditAction(request, who, {
      action: 'settings.capa-webhook',
      targetType: 'setting',
      targetId: SETTING_KEYS.capaWebhook,
      outcome: 'error',
      detail: { url, error: err instanceof CapaError ? `${err.status ?? err.kind} ${err.code}` : String(err) },
    });
    return { tone: 'error', message: `Capa did not accept the change, so nothing was saved: ${describeCapaError(err)}`, values };
  }
}
