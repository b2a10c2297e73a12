import type { CustomerNotificationKind, NotificationLocale } from '../../db/schema.js';

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

interface Copy {
  subject: string;
  greeting: (name: string | null) => string;
  paragraphs: string[];
  steps?: { title: string; items: string[] };
  button: string;
  linkHelp: string;
  closing: string[];
  footer: string;
  short: (url: string) => string;
}

const STEPS_ES = {
  title: 'Antes de volver a intentarlo:',
  items: [
    'Ten a la mano tu identificación oficial vigente (INE, pasaporte o cédula), sin fundas ni reflejos.',
    'Busca un lugar con buena luz y toma la foto del documento completo, con las cuatro esquinas visibles.',
    'En la selfie, mira de frente a la cámara, sin lentes oscuros, gorra ni cubrebocas.',
    'Revisa que tus datos coincidan con los de tu documento.',
  ],
};
const STEPS_EN = {
  title: 'Before you try again:',
  items: [
    'Have your valid government ID (INE, passport or national ID card) at hand, out of its case and free of glare.',
    'Find a well-lit place and photograph the whole document with all four corners visible.',
    'For the selfie, face the camera without sunglasses, a cap or a face mask.',
    'Make sure the details you enter match your document.',
  ],
};

const COPY: Record<NotificationLocale, Record<CustomerNotificationKind, Copy>> = {
  es: {
    kyc_link: {
      subject: 'Tu enlace de verificación',
      greeting: (n) => (n ? `Hola, ${n}:` : 'Hola:'),
      paragraphs: [
        'Para terminar de abrir tu cuenta necesitamos verificar tu identidad. Toma unos 5 minutos y solo necesitas tu identificación oficial y tu teléfono o computadora con cámara.',
      ],
      button: 'Verificar mi identidad',
      linkHelp: 'Si el botón no funciona, copia y pega este enlace en tu navegador:',
      closing: ['El enlace es personal; no lo compartas. Si recibes un enlace más reciente, usa siempre el último.'],
      footer: 'Recibiste este mensaje porque estás abriendo una cuenta con nosotros. Si no fuiste tú, ignora este correo.',
      short: (u) => `Verifica tu identidad para terminar de abrir tu cuenta: ${u}`,
    },
    kyc_retry: {
      subject: 'Tu verificación no fue aprobada — así puedes intentarlo de nuevo',
      greeting: (n) => (n ? `Hola, ${n}:` : 'Hola:'),
      paragraphs: [
        'Revisamos tu verificación de identidad y no pudimos aprobarla. Suele deberse a una foto borrosa o incompleta del documento, o a datos que no coinciden.',
        'Puedes intentarlo de nuevo con este enlace nuevo:',
      ],
      steps: STEPS_ES,
      button: 'Intentar de nuevo',
      linkHelp: 'Si el botón no funciona, copia y pega este enlace en tu navegador:',
      closing: ['Este enlace reemplaza a los anteriores. Es personal; no lo compartas.'],
      footer: 'Recibiste este mensaje porque intentaste verificar tu identidad con nosotros. Si no fuiste tú, ignora este correo.',
      short: (u) => `Tu verificación no fue aprobada. Intenta de nuevo aquí: ${u}`,
    },
    kyc_retry_reminder: {
      subject: 'Recordatorio: tu verificación no fue aprobada — así puedes intentarlo de nuevo',
      greeting: (n) => (n ? `Hola, ${n}:` : 'Hola:'),
      paragraphs: [
        'Te recordamos que tu verificación de identidad no fue aprobada y que aún puedes intentarlo de nuevo. Solo toma unos minutos.',
      ],
      steps: STEPS_ES,
      button: 'Intentar de nuevo',
      linkHelp: 'Si el botón no funciona, copia y pega este enlace en tu navegador:',
      closing: ['Si ya lo intentaste de nuevo, ignora este mensaje.'],
      footer: 'Recibiste este mensaje porque intentaste verificar tu identidad con nosotros. Si no fuiste tú, ignora este correo.',
      short: (u) => `Recordatorio: aún puedes repetir tu verificación aquí: ${u}`,
    },
  },
  en: {
    kyc_link: {
      subject: 'Your verification link',
      greeting: (n) => (n ? `Hello ${n},` : 'Hello,'),
      paragraphs: [
        'To finish opening your account we need to verify your identity. It takes about 5 minutes; all you need is your government ID and a phone or computer with a camera.',
      ],
      button: 'Verify my identity',
      linkHelp: 'If the button does not work, copy and paste this link into your browser:',
      closing: ['This link is personal; do not share it. If you receive a newer link, always use the latest one.'],
      footer: 'You received this message because you are opening an account with us. If this was not you, ignore this e-mail.',
      short: (u) => `Verify your identity to finish opening your account: ${u}`,
    },
    kyc_retry: {
      subject: 'Your verification was not approved — here is how to try again',
      greeting: (n) => (n ? `Hello ${n},` : 'Hello,'),
      paragraphs: [
        'We reviewed your identity verification and could not approve it. This is usually caused by a blurry or cropped photo of the document, or by details that do not match.',
        'You can try again with this new link:',
      ],
      steps: STEPS_EN,
      button: 'Try again',
      linkHelp: 'If the button does not work, copy and paste this link into your browser:',
      closing: ['This link replaces any earlier one. It is personal; do not share it.'],
      footer: 'You received this message because you tried to verify your identity with us. If this was not you, ignore this e-mail.',
      short: (u) => `Your verification was not approved. Try again here: ${u}`,
    },
    kyc_retry_reminder: {
      subject: 'Reminder: your verification was not approved — here is how to try again',
      greeting: (n) => (n ? `Hello ${n},` : 'Hello,'),
      paragraphs: ['A reminder that your identity verification was not approved and you can still try again. It only takes a few minutes.'],
      steps: STEPS_EN,
      button: 'Try again',
      linkHelp: 'If the button does not work, copy and paste this link into your browser:',
      closing: ['If you have already tried again, please ignore this message.'],
      footer: 'You received this message because you tried to verify your identity with us. If this was not you, ignore this e-mail.',
      short: (u) => `Reminder: you can still redo your verification here: ${u}`,
    },
  },
};

function cleanName(name: string | null | undefined): string | null {
  // Aliases are operator-entered; keep them to one short line in a greeting.
  const n = (name ?? '')
    .replace(/[\r\n\t]+/g, ' ')
    .trim()
    .slice(0, 80);
  return n || null;
}

export function render(kind: CustomerNotificationKind, locale: NotificationLocale, vars: TemplateVars): Rendered {
  const copy = COPY[locale]?.[kind];
  if (!copy) throw new TemplateError(`no template for ${kind} in ${locale}`);
  const url = checkLink(vars.linkUrl);
  const name = cleanName(vars.name);
  const greeting = copy.greeting(name);

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
  return { subject: copy.subject, text, html, short: copy.short(url) };
}

/** Sample data for the operator preview (no customer data involved). */
export const SAMPLE_VARS: Record<NotificationLocale, TemplateVars> = {
  es: { name: 'Ana López', linkUrl: 'https://verify.example/s/sample-link' },
  en: { name: 'Ana López', linkUrl: 'https://verify.example/s/sample-link' },
};
