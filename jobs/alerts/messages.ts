import type { Alert, AlertNotificationKind } from '../../db/schema.js';
import type { AlertRuleId } from '../../domain/alerts.js';
import { createFormatters, createI18n, type Formatters, type I18n, type TFunction } from '../../lib/i18n.js';
import { INTL_LOCALE, type Language } from '../../lib/locales.js';
import { escapeHtml, type Rendered } from '../notifications/templates.js';
import en from './locales/en.json';
import es from './locales/es.json';

/**
 * What an alert says, in Spanish and English: its title and summary (the /alerts page shows the
 * same words, through app/alerts.server.ts), the e-mail to operators and the webhook body. One
 * catalogue per language in jobs/alerts/locales/, so the page and the messages never disagree.
 */

const NS = 'alert-messages';
const instances = new Map<Language, I18n>();

function instance(lng: Language): I18n {
  let i = instances.get(lng);
  if (!i) {
    i = createI18n({ lng, resources: { en: { [NS]: en }, es: { [NS]: es } }, ns: [NS], defaultNS: NS });
    instances.set(lng, i);
  }
  return i;
}

export function alertT(lng: Language): TFunction {
  return instance(lng).getFixedT(lng, NS);
}

export interface Voice {
  t: TFunction;
  fmt: Formatters;
}

/** The words and formats of one language and time zone. */
export function voice(lng: Language, timeZone: string): Voice {
  return { t: alertT(lng), fmt: createFormatters(INTL_LOCALE[lng], timeZone) };
}

const ruleKey = (rule: AlertRuleId) => `rules.${rule}`;

/**
 * A measurement's values as the summaries interpolate them: `…Seconds` as a duration (under the
 * name without the suffix), `…At` as a date and time, `percent` as a percentage, numbers grouped.
 */
export function formatValues(values: Record<string, unknown>, { t, fmt }: Voice): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(values)) {
    if (k.endsWith('Seconds') && typeof v === 'number') out[k.slice(0, -'Seconds'.length)] = fmt.duration(v * 1000);
    else if (k.endsWith('At')) out[k.slice(0, -'At'.length)] = typeof v === 'string' && v ? fmt.dateTime(v) : t('never');
    else if (k === 'percent' && typeof v === 'number') out[k] = fmt.percent(v / 100, 1);
    else if (typeof v === 'number') out[k] = fmt.number(v);
    else out[k] = v === null || v === undefined || v === '' ? '—' : String(v);
  }
  return out;
}

/** The count that picks a summary's plural form, per rule. */
const COUNT_OF: Partial<Record<AlertRuleId, string>> = {
  'webhooks.silent': 'customers',
  'imports.paused': 'imports',
  'review.sla_breached': 'cases',
};

export function ruleTitle(rule: AlertRuleId, v: Voice): string {
  return v.t(`${ruleKey(rule)}.title`);
}

export function ruleSummary(rule: AlertRuleId, values: Record<string, unknown>, v: Voice): string {
  const countKey = COUNT_OF[rule];
  // Plural summaries always get a count (0 when the figure is missing), so the key resolves.
  const count = countKey ? (typeof values[countKey] === 'number' ? (values[countKey] as number) : 0) : undefined;
  return v.t(`${ruleKey(rule)}.summary`, { ...formatValues(values, v), ...(count !== undefined ? { count } : {}) });
}

export function severityWord(severity: string, v: Voice): string {
  return v.t(`severity.${severity}`);
}

const measureOf = (a: Pick<Alert, 'measure'>): Record<string, unknown> => {
  try {
    return JSON.parse(a.measure) as Record<string, unknown>;
  } catch {
    return {};
  }
};

/** Where the alert is shown, and the page it is about, as absolute URLs. */
export function alertLinks(a: Pick<Alert, 'id' | 'page'>, publicUrl: string): { alert: string; page: string } {
  return { alert: `${publicUrl}/alerts?alert=${encodeURIComponent(a.id)}#alert-${a.id}`, page: `${publicUrl}${a.page}` };
}

/** The e-mail to an operator that an alert fired or resolved. */
export function renderAlertEmail(kind: AlertNotificationKind, a: Alert, v: Voice, publicUrl: string): Rendered {
  const { t, fmt } = v;
  const e = escapeHtml;
  const title = ruleTitle(a.ruleId, v);
  const summary = ruleSummary(a.ruleId, measureOf(a), v);
  const severity = severityWord(a.severity, v);
  const links = alertLinks(a, publicUrl);
  const resolved = kind === 'alert_resolved';
  const subject = resolved ? t('email.subject_resolved', { title }) : t('email.subject_firing', { severity, title });
  const rows: Array<[string, string]> = [
    [t('email.rule'), a.ruleId],
    [t('email.severity'), severity],
    [t('email.firing_since'), fmt.dateTime(a.firedAt ?? a.pendingSince)],
    ...(resolved && a.resolvedAt ? ([[t('email.resolved_at'), fmt.dateTime(a.resolvedAt)]] as Array<[string, string]>) : []),
  ];
  const intro = resolved ? t('email.intro_resolved') : t('email.intro_firing');
  const footer = t('email.footer', { severity });
  const text = [
    intro,
    '',
    title,
    summary,
    '',
    ...rows.map(([k, val]) => `${k}: ${val}`),
    '',
    `${t('email.open')}: ${links.alert}`,
    `${t('email.explain')}: ${links.page}`,
    '',
    '-- ',
    footer,
    '',
  ].join('\n');
  const lang = fmt.locale.slice(0, 2);
  const html = `<!doctype html>
<html lang="${e(lang)}">
<head><meta charset="utf-8"><title>${e(subject)}</title></head>
<body style="font-family:Arial,Helvetica,sans-serif;color:#1d2330">
<p>${e(intro)}</p>
<h2 style="margin:16px 0 8px;color:${resolved ? '#1e7b34' : a.severity === 'critical' ? '#b3261e' : '#8a5a00'}">${e(title)}</h2>
<p style="font-size:15px;line-height:1.5">${e(summary)}</p>
<table cellpadding="4" style="font-size:14px;border-collapse:collapse">
${rows.map(([k, val]) => `<tr><th align="left" style="color:#555">${e(k)}</th><td>${e(val)}</td></tr>`).join('\n')}
</table>
<p><a href="${e(links.alert)}">${e(t('email.open'))}</a> · <a href="${e(links.page)}">${e(t('email.explain'))}</a></p>
<hr style="border:none;border-top:1px solid #e3e5ea">
<p style="font-size:12px;color:#777">${e(footer)}</p>
</body>
</html>
`;
  return { subject, text, html, short: `${subject} ${links.alert}` };
}

/**
 * The webhook's body. `json`: KYC Desk's own shape (event, delivery id, the alert with its figures
 * and links); `slack`: `{ text }` with a link, which Slack incoming webhooks and most chat tools
 * accept. Either way the exact bytes are what the signature covers.
 */
export function alertWebhookBody(
  kind: AlertNotificationKind,
  a: Alert,
  deliveryId: string,
  format: 'json' | 'slack',
  v: Voice,
  publicUrl: string,
  sentAt: string,
): { body: string; title: string } {
  const title = ruleTitle(a.ruleId, v);
  const summary = ruleSummary(a.ruleId, measureOf(a), v);
  const links = alertLinks(a, publicUrl);
  const resolved = kind === 'alert_resolved';
  if (format === 'slack') {
    const head = resolved ? v.t('chat.resolved', { title }) : v.t('chat.firing', { title, severity: severityWord(a.severity, v) });
    const mark = resolved ? ':white_check_mark:' : a.severity === 'critical' ? ':red_circle:' : ':warning:';
    return {
      body: JSON.stringify({ text: `${mark} *${head}* (\`${a.ruleId}\`)\n${summary}\n<${links.alert}|${v.t('chat.open')}>` }),
      title,
    };
  }
  return {
    title,
    body: JSON.stringify({
      event: resolved ? 'alert.resolved' : 'alert.firing',
      deliveryId,
      sentAt,
      alert: {
        id: a.id,
        rule: a.ruleId,
        severity: a.severity,
        state: a.state,
        title,
        summary,
        value: a.value,
        values: measureOf(a),
        pendingSince: a.pendingSince,
        firedAt: a.firedAt,
        acknowledgedAt: a.acknowledgedAt,
        resolvedAt: a.resolvedAt,
        url: links.alert,
        page: links.page,
      },
    }),
  };
}
