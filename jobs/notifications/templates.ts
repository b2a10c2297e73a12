import type { CustomerNotificationKind, NotificationLocale } from '../../db/schema.js';
import { createI18n, fixedT, type I18n, type TFunction } from '../../lib/i18n.js';
import enCopy from './locales/en.json';
import esCopy from './locales/es.json';

/**
 * Message templates: "your verification link" and "your verification was not approved — here is
 * how to try again" (the reminder is the latter with a reminder subject), in Spanish and English,
 * as plain text and HTML. Pure functions: the worker sends what the preview page shows.
 *
 * Every variable is escaped for HTML; the link must be http(s) or rendering refuses (a link we
 * cannot vouch for is never put in front of a customer).
 */

export const TEMPLATE_VERSION = 1;
export const LOCALES: readonly NotificationLocale[] = ['es', 'en'];

export interface TemplateVars {
  /** Customer's alias or name; null greets generically. */
  name: string | null;
  linkUrl: string;
  /** Reminder number (1-based) for kyc_retry_reminder. */
  reminder?: number | null;
  /** How to reach a person; shown in the footer. */
  replyTo?: string | null;
}

export interface Rendered {
  subject: string;
  text: string;
  html: string;
  /** Short form for channels without a subject or HTML (SMS). */
  short: string;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** MX and DO customers read Spanish by default; anyone else English. */
export function defaultLocale(country: string | null | undefined): NotificationLocale {
  return country === 'MX' || country === 'DO' ? 'es' : 'en';
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function checkLink(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TemplateError('the verification link is not a valid URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new TemplateError(`the verification link must be http(s), not ${u.protocol}`);
  return u.toString();
}

/**
 * The copy lives in catalogues (./locales/<lng>.json), rendered through the same i18next machinery
 * as the console (lib/i18n.ts); the layout — which parts each message has and the HTML around
 * them — stays here.
 */
const CATALOGUES = { es: esCopy, en: enCopy } satisfies Record<NotificationLocale, object>;
const LAYOUT: Record<CustomerNotificationKind, { retrySteps: boolean }> = {
  kyc_link: { retrySteps: false },
  kyc_retry: { retrySteps: true },
  kyc_retry_reminder: { retrySteps: true },
};

let copyI18n: I18n | undefined;
function copyFor(locale: NotificationLocale): TFunction {
  copyI18n ??= createI18n({
    lng: 'en',
    resources: { es: { email: CATALOGUES.es }, en: { email: CATALOGUES.en } },
    ns: ['email'],
    defaultNS: 'email',
  });
  return fixedT(copyI18n, locale, 'email');
}

/** A numbered group of texts (`paragraphs`, `closing`, `items`) in order. */
function texts(t: TFunction, key: string): string[] {
  const group = t(key, { returnObjects: true }) as unknown;
  return group && typeof group === 'object' ? Object.values(group as Record<string, unknown>).map(String) : [];
}

function cleanName(name: string | null | undefined): string | null {
  // Aliases are operator-entered; keep them to one short line in a greeting.
  const n = (name ?? '')
    .replace(/[\r\n\t]+/g, ' ')
    .trim()
    .slice(0, 80);
  return n || null;
}

export function render(kind: CustomerNotificationKind, locale: NotificationLocale, vars: TemplateVars): Rendered {
  if (!Object.hasOwn(CATALOGUES, locale) || !Object.hasOwn(LAYOUT, kind)) throw new TemplateError(`no template for ${kind} in ${locale}`);
  const url = checkLink(vars.linkUrl);
  const name = cleanName(vars.name);
  const t = copyFor(locale);
  const copy = {
    subject: t(`${kind}.subject`),
    paragraphs: texts(t, `${kind}.paragraphs`),
    steps: LAYOUT[kind].retrySteps ? { title: t('retry_steps.title'), items: texts(t, 'retry_steps.items') } : null,
    button: t(`${kind}.button`),
    linkHelp: t('link_help'),
    closing: texts(t, `${kind}.closing`),
    footer: t(`${kind}.footer`),
    short: t(`${kind}.short`, { url }),
  };
  const greeting = name ? t('greeting', { name }) : t('greeting_anonymous');

  const text = [
    greeting,
    '',
    ...copy.paragraphs.flatMap((p) => [p, '']),
    `${copy.button}: ${url}`,
    '',
    ...(copy.steps ? [copy.steps.title, ...copy.steps.items.map((i) => `  - ${i}`), ''] : []),
    ...copy.closing.flatMap((c) => [c, '']),
    '-- ',
    copy.footer,
    ...(vars.replyTo ? [vars.replyTo] : []),
    '',
  ].join('\n');

  const e = escapeHtml;
  const lang = locale;
  const html = `<!doctype html>
<html lang="${lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${e(copy.subject)}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#1d2330">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;padding:24px 0">
<tr><td align="center">
<table role="presentation" width="560" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:8px;padding:32px">
<tr><td>
<p style="font-size:16px;margin:0 0 16px">${e(greeting)}</p>
${copy.paragraphs.map((p) => `<p style="font-size:15px;line-height:1.5;margin:0 0 16px">${e(p)}</p>`).join('\n')}
<p style="margin:24px 0;text-align:center"><a href="${e(url)}" style="display:inline-block;background:#1f5fd6;color:#ffffff;text-decoration:none;font-weight:bold;padding:12px 24px;border-radius:6px">${e(copy.button)}</a></p>
${copy.steps ? `<p style="font-size:15px;margin:0 0 8px;font-weight:bold">${e(copy.steps.title)}</p>\n<ul style="font-size:14px;line-height:1.5;margin:0 0 16px;padding-left:20px">${copy.steps.items.map((i) => `<li>${e(i)}</li>`).join('')}</ul>` : ''}
<p style="font-size:13px;color:#555;margin:0 0 4px">${e(copy.linkHelp)}</p>
<p style="font-size:13px;word-break:break-all;margin:0 0 16px"><a href="${e(url)}" style="color:#1f5fd6">${e(url)}</a></p>
${copy.closing.map((c) => `<p style="font-size:14px;margin:0 0 12px">${e(c)}</p>`).join('\n')}
<hr style="border:none;border-top:1px solid #e3e5ea;margin:24px 0 12px">
<p style="font-size:12px;color:#777;margin:0">${e(copy.footer)}${vars.replyTo ? `<br>${e(vars.replyTo)}` : ''}</p>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
`;
  return { subject: copy.subject, text, html, short: copy.short };
}

/** Sample data for the operator preview (no customer data involved). */
export const SAMPLE_VARS: Record<NotificationLocale, TemplateVars> = {
  es: { name: 'Ana López', linkUrl: 'https://verify.example/s/sample-link' },
  en: { name: 'Ana López', linkUrl: 'https://verify.example/s/sample-link' },
};
