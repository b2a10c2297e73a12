import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { CapaError } from '../capa/client.js';
import { secretUsageSince } from '../db/repositories/inbox.js';
import { getSetting, putSetting, SETTING_KEYS, type CapaWebhookSetting } from '../db/repositories/settings.js';
import { isoAgo, nowIso } from '../lib/time.js';
import type { ActionResult } from './action-result';
import { auditAction, type SignedIn } from './auth.server';
import { opsCapa } from './capa-client.server';
import { capaErrorMessage } from './plain-errors.server';
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
      .string({ required_error: 'settings:errors.url_missing' })
      .trim()
      .min(1, 'settings:errors.url_missing')
      .max(2000, 'settings:errors.url_too_long')
      .url('settings:errors.url_invalid')
      .refine((u) => /^https?:\/\//i.test(u), 'settings:errors.url_scheme'),
  }),
  z.object({
    intent: z.literal('disable'),
    confirm: z.literal('yes', { errorMap: () => ({ message: 'settings:errors.confirm_off' }) }),
  }),
]);

/** `errors` are message codes per field (the schema's messages are catalogue keys); `values` refill the form. */
export type SettingsOutcome = ActionResult & { errors?: Record<string, string>; formValues?: Record<string, string> };

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
    // Our schema's messages are catalogue keys; an issue zod words itself is a malformed field.
    for (const i of parsed.error.issues)
      errors[String(i.path[0] ?? 'form')] ??= /^settings:/.test(i.message) ? i.message : 'settings:errors.invalid';
    return { tone: 'error', code: 'settings:messages.check_form', errors, formValues: values };
  }
  const url = parsed.data.intent === 'set-url' ? parsed.data.url : null;
  if (url && env.NODE_ENV === 'production' && !/^https:\/\//i.test(url)) {
    return {
      tone: 'error',
      code: 'settings:messages.check_form',
      errors: { url: 'settings:errors.url_https_production' },
      formValues: values,
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
      action: AUDIT_ACTIONS.settingsCapaWebhook,
      targetType: 'setting',
      targetId: SETTING_KEYS.capaWebhook,
      outcome: 'ok',
      detail: { url: setting.url },
    });
    return url
      ? { tone: 'ok', code: 'settings:messages.url_set', values: { url: setting.url ?? url } }
      : { tone: 'ok', code: 'settings:messages.switched_off' };
  } catch (err) {
    await auditAction(request, who, {
      action: AUDIT_ACTIONS.settingsCapaWebhook,
      targetType: 'setting',
      targetId: SETTING_KEYS.capaWebhook,
      outcome: 'error',
      detail: { url, error: err instanceof CapaError ? `${err.status ?? err.kind} ${err.code}` : String(err) },
    });
    const why = capaErrorMessage(err);
    return { tone: 'error', code: 'settings:messages.capa_refused', values: { ...why.values, reasonCode: why.code }, formValues: values };
  }
}
