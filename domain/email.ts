import { z } from 'zod';

/**
 * The one e-mail address rule: the create form (browser and server), the CSV dry run, the mail
 * channel and the Capa sandbox all decide "is this an address we can use" here, so an address
 * accepted at the door is one we can also deliver to.
 *
 * Internationalised addresses (RFC 6531/6532) are legal: a UTF-8 local part (`sofía@…`) is sent
 * with SMTPUTF8, and a Unicode domain (`…@müller.de`) is sent as its punycode A-label. What is
 * refused are addresses nobody hands out in practice and that downstream systems (Capa, the KYC
 * provider, mailbox providers) cannot be trusted to handle: quoted local parts, IP-literal
 * domains, dotless domains, invisible characters.
 *
 * No I/O and no project imports: it runs in the browser bundle as well as in every process.
 */

export const EMAIL_PROBLEMS = [
  'missing',
  'space',
  'invisible',
  'no_at',
  'quoted',
  'several_at',
  'local_empty',
  'local_dot',
  'local_char',
  'local_too_long',
  'domain_empty',
  'domain_literal',
  'domain_dot',
  'domain_no_dot',
  'domain_char',
  'domain_hyphen',
  'domain_label_too_long',
  'domain_too_long',
  'tld',
  'too_long',
] as const;
export type EmailProblem = (typeof EMAIL_PROBLEMS)[number];

export type EmailCheck =
  | {
      ok: true;
      /** The normalised address (what we store, compare and send). */
      email: string;
      /** The local part has non-ASCII characters: delivery needs an SMTPUTF8 server. */
      smtpUtf8: boolean;
      /** The domain as DNS and SMTP see it (punycode A-labels). */
      asciiDomain: string;
    }
  | { ok: false; problem: EmailProblem; /** The offending character, when there is one. */ char?: string };

/** RFC 5321: 64 octets of local part; a path of 256 octets including the angle brackets. */
export const MAX_LOCAL_OCTETS = 64;
export const MAX_ADDRESS_OCTETS = 254;
const MAX_DOMAIN_OCTETS = 253;
const MAX_LABEL_OCTETS = 63;

// RFC 5322 atext, plus any letter, mark or digit of any script (RFC 6532 UTF8-non-ascii, narrowed
// to what names are written with: no symbols, punctuation or spaces from other scripts).
const LOCAL_CHAR = /^(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[\p{L}\p{M}\p{N}])$/u;
const LABEL_CHAR = /^(?:[a-z0-9-]|[\p{L}\p{M}\p{N}])$/u;
const WHITESPACE = /[\s\p{Z}]/u;
// Controls, format characters (zero-width space, bidi overrides) and lone surrogates: invisible on
// screen, so an operator could never see why an address is refused or differs from another.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}]/u;

/** Trimmed, Unicode NFC (so é typed as e + ◌́ equals é), lower-cased. Not a validity check. */
export function normalizeEmail(input: string): string {
  return input.trim().normalize('NFC').toLowerCase().normalize('NFC');
}

const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

/** Checks an address as typed (surrounding spaces and case do not matter) and normalises it. */
export function checkEmail(input: string | null | undefined): EmailCheck {
  const email = normalizeEmail(input ?? '');
  if (!email) return { ok: false, problem: 'missing' };
  if (email.startsWith('"')) return { ok: false, problem: 'quoted' };
  const space = WHITESPACE.exec(email);
  if (space) return { ok: false, problem: 'space' };
  const invisible = INVISIBLE.exec(email);
  if (invisible) return { ok: false, problem: 'invisible', char: codePointName(invisible[0]) };
  const at = email.lastIndexOf('@');
  if (at < 0) return { ok: false, problem: 'no_at' };
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (local.includes('@')) return { ok: false, problem: 'several_at' };

  if (!local) return { ok: false, problem: 'local_empty' };
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return { ok: false, problem: 'local_dot' };
  for (const ch of local) {
    if (ch !== '.' && !LOCAL_CHAR.test(ch)) return { ok: false, problem: 'local_char', char: ch };
  }
  if (utf8Length(local) > MAX_LOCAL_OCTETS) return { ok: false, problem: 'local_too_long' };

  if (!domain) return { ok: false, problem: 'domain_empty' };
  if (domain.startsWith('[')) return { ok: false, problem: 'domain_literal' };
  if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..')) return { ok: false, problem: 'domain_dot' };
  const labels = domain.split('.');
  if (labels.length < 2) return { ok: false, problem: 'domain_no_dot' };
  const asciiLabels: string[] = [];
  for (const label of labels) {
    for (const ch of label) if (!LABEL_CHAR.test(ch)) return { ok: false, problem: 'domain_char', char: ch };
    if (label.startsWith('-') || label.endsWith('-')) return { ok: false, problem: 'domain_hyphen' };
    // IDNA: a label cannot begin with a combining mark.
    if (/^\p{M}/u.test(label)) return { ok: false, problem: 'domain_char', char: codePointName([...label][0]!) };
    const ascii = /^[\x00-\x7F]*$/.test(label) ? label : `xn--${punycodeEncode(label)}`;
    if (ascii.length > MAX_LABEL_OCTETS) return { ok: false, problem: 'domain_label_too_long' };
    asciiLabels.push(ascii);
  }
  const tld = labels[labels.length - 1]!;
  if (/^[0-9]+$/.test(tld) || (/^[\x00-\x7F]+$/.test(tld) && tld.length < 2)) return { ok: false, problem: 'tld' };
  const asciiDomain = asciiLabels.join('.');
  if (asciiDomain.length > MAX_DOMAIN_OCTETS) return { ok: false, problem: 'domain_too_long' };
  // What goes on the wire: the local part as UTF-8 and the domain as A-labels.
  if (utf8Length(local) + 1 + asciiDomain.length > MAX_ADDRESS_OCTETS) return { ok: false, problem: 'too_long' };
  return { ok: true, email, smtpUtf8: /[^\x00-\x7F]/.test(local), asciiDomain };
}

export function isValidEmail(input: string | null | undefined): boolean {
  return checkEmail(input).ok;
}

/** True when delivering to this (valid) address needs an SMTP server that speaks SMTPUTF8. */
export function needsSmtpUtf8(address: string): boolean {
  const at = address.lastIndexOf('@');
  return /[^\x00-\x7F]/.test(at < 0 ? address : address.slice(0, at));
}

const PROBLEM_TEXT: Record<EmailProblem, string> = {
  missing: 'it is empty',
  space: 'it contains a space',
  invisible: 'it contains an invisible or control character',
  no_at: 'it has no @',
  quoted: 'quoted local parts ("…"@) are not accepted',
  several_at: 'it has more than one @',
  local_empty: 'nothing before the @',
  local_dot: 'the part before the @ starts or ends with a dot, or has two dots in a row',
  local_char: 'the part before the @ contains a character e-mail addresses cannot have',
  local_too_long: `the part before the @ is longer than ${MAX_LOCAL_OCTETS} bytes`,
  domain_empty: 'nothing after the @',
  domain_literal: 'IP-address domains ([…]) are not accepted',
  domain_dot: 'the domain starts or ends with a dot, or has two dots in a row',
  domain_no_dot: 'the domain has no dot (like example.com)',
  domain_char: 'the domain contains a character domain names cannot have',
  domain_hyphen: 'a part of the domain starts or ends with a hyphen',
  domain_label_too_long: `a part of the domain is longer than ${MAX_LABEL_OCTETS} characters`,
  domain_too_long: `the domain is longer than ${MAX_DOMAIN_OCTETS} characters`,
  tld: 'the domain does not end in a top-level domain (like .mx or .com)',
  too_long: `it is longer than ${MAX_ADDRESS_OCTETS} bytes`,
};

/** Why an address was refused, in plain words (English, for logs; what an operator reads comes from emailProblemValues and the catalogue). */
export function describeEmailProblem(r: { problem: EmailProblem; char?: string }): string {
  const text = PROBLEM_TEXT[r.problem];
  return r.char && (r.problem === 'local_char' || r.problem === 'domain_char' || r.problem === 'invisible')
    ? `${text}: ${JSON.stringify(r.char)}`
    : text;
}

/**
 * A refusal as values for a catalogue (`email-rule:problems.<problem>` words it): the problem code,
 * the offending character where there is one, the limit that was passed where there is one.
 */
export function emailProblemValues(r: { problem: EmailProblem; char?: string }): { problem: EmailProblem; char?: string; max?: number } {
  const max = LIMIT_OF[r.problem];
  return {
    problem: r.problem,
    ...(r.char && (r.problem === 'local_char' || r.problem === 'domain_char' || r.problem === 'invisible') ? { char: r.char } : {}),
    ...(max !== undefined ? { max } : {}),
  };
}

const LIMIT_OF: Partial<Record<EmailProblem, number>> = {
  local_too_long: MAX_LOCAL_OCTETS,
  domain_label_too_long: MAX_LABEL_OCTETS,
  domain_too_long: MAX_DOMAIN_OCTETS,
  too_long: MAX_ADDRESS_OCTETS,
};

/**
 * A zod field for the rule: accepts what `checkEmail` accepts and yields the normalised address.
 * `message` words the refusal for the form at hand; the issue carries the code in `params`.
 */
export function emailSchema(opts: { message?: (r: { problem: EmailProblem; char?: string }) => string } = {}) {
  const message = opts.message ?? ((r) => `Not a valid e-mail address: ${describeEmailProblem(r)}.`);
  return z.string().transform((value, ctx) => {
    const r = checkEmail(value);
    if (r.ok) return r.email;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: message(r), params: { emailProblem: r.problem, ...emailProblemValues(r) } });
    return z.NEVER;
  });
}

export const EmailSchema = emailSchema();

function codePointName(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

// ---------------------------------------------------------------- punycode (RFC 3492), encode only

const BASE = 36;
const TMIN = 1;
const TMAX = 26;
const SKEW = 38;
const DAMP = 700;

function adapt(delta: number, points: number, first: boolean): number {
  let d = first ? Math.floor(delta / DAMP) : delta >> 1;
  d += Math.floor(d / points);
  let k = 0;
  while (d > ((BASE - TMIN) * TMAX) >> 1) {
    d = Math.floor(d / (BASE - TMIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - TMIN + 1) * d) / (d + SKEW));
}

const digit = (d: number): string => String.fromCharCode(d < 26 ? 97 + d : 22 + d);

/** The punycode of one (lower-case) label, without the xn-- prefix: what SMTP and DNS see. */
export function punycodeEncode(label: string): string {
  const cps = Array.from(label, (c) => c.codePointAt(0)!);
  let out = cps
    .filter((c) => c < 0x80)
    .map((c) => String.fromCharCode(c))
    .join('');
  const basic = out.length;
  let handled = basic;
  if (basic > 0) out += '-';
  let n = 0x80;
  let delta = 0;
  let bias = 72;
  while (handled < cps.length) {
    let m = Infinity;
    for (const c of cps) if (c >= n && c < m) m = c;
    delta += (m - n) * (handled + 1);
    n = m;
    for (const c of cps) {
      if (c < n) delta++;
      if (c !== n) continue;
      let q = delta;
      for (let k = BASE; ; k += BASE) {
        const t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
        if (q < t) break;
        out += digit(t + ((q - t) % (BASE - t)));
        q = Math.floor((q - t) / (BASE - t));
      }
      out += digit(q);
      bias = adapt(delta, handled + 1, handled === basic);
      delta = 0;
      handled++;
    }
    delta++;
    n++;
  }
  return out;
}
