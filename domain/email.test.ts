import { domainToASCII } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  checkEmail,
  describeEmailProblem,
  EMAIL_PROBLEMS,
  EmailSchema,
  isValidEmail,
  needsSmtpUtf8,
  normalizeEmail,
  punycodeEncode,
  type EmailProblem,
} from './email';

const problemOf = (s: string) => {
  const r = checkEmail(s);
  return r.ok ? null : r.problem;
};

describe('the e-mail address rule', () => {
  it('accepts ordinary ASCII addresses, with every atext character RFC 5322 allows', () => {
    for (const ok of [
      'ana@example.mx',
      'ana.lopez@example.mx',
      'ana+kyc@mail.example.com.mx',
      "o'brien@example.ie",
      "a!#$%&'*+/=?^_`{|}~-z@example.com",
      'x@ex-ample.co',
      '1234@123.example.mx',
      'a@b.co',
      'user@xn--exmple-cua.mx',
    ]) {
      expect(checkEmail(ok), ok).toMatchObject({ ok: true, smtpUtf8: false });
    }
  });

  it('accepts internationalised addresses (RFC 6531): accented and non-Latin local parts need SMTPUTF8', () => {
    expect(checkEmail('sofía.392@example.mx')).toEqual({
      ok: true,
      email: 'sofía.392@example.mx',
      smtpUtf8: true,
      asciiDomain: 'example.mx',
    });
    for (const ok of [
      'josé.núñez@example.do',
      'françois@example.fr',
      'müller@example.de',
      'δοκιμή@example.gr',
      'пользователь@example.ru',
      '用户@example.cn',
      'संपर्क@example.in',
      'ñandú_2@example.mx',
    ]) {
      expect(checkEmail(ok), ok).toMatchObject({ ok: true, smtpUtf8: true });
      expect(needsSmtpUtf8(ok)).toBe(true);
    }
    expect(needsSmtpUtf8('ana@müller.de')).toBe(false);
  });

  it('accepts IDN domains and gives their A-label form (what DNS and SMTP see)', () => {
    expect(checkEmail('ana@exämple.mx')).toEqual({ ok: true, email: 'ana@exämple.mx', smtpUtf8: false, asciiDomain: 'xn--exmple-cua.mx' });
    expect(checkEmail('info@bücher.de')).toMatchObject({ ok: true, asciiDomain: 'xn--bcher-kva.de' });
    expect(checkEmail('Ñandú@Peña.Example.MX')).toMatchObject({
      ok: true,
      email: 'ñandú@peña.example.mx',
      smtpUtf8: true,
      asciiDomain: 'xn--pea-8ma.example.mx',
    });
    // IDN top-level domains.
    expect(checkEmail('почта@пример.рф')).toMatchObject({ ok: true, asciiDomain: 'xn--e1afmkfd.xn--p1ai' });
    expect(checkEmail('a@例子.中国')).toMatchObject({ ok: true });
  });

  it('punycode matches the platform’s IDNA conversion', () => {
    for (const d of [
      'exämple',
      'bücher',
      'peña',
      'пример',
      'рф',
      '例子',
      '中国',
      'ドメイン名例',
      'mañana-ñu',
      'ελληνικά',
      'a-ü-b',
      'ünïcödé',
    ]) {
      expect(`xn--${punycodeEncode(d)}`, d).toBe(domainToASCII(`${d}.com`).replace(/\.com$/, ''));
    }
  });

  it('normalises: surrounding spaces, case and Unicode composition do not make a different address', () => {
    const decomposed = 'sofi\u0301a@example.mx';
    expect(decomposed).not.toBe('sofía@example.mx');
    expect(normalizeEmail(decomposed)).toBe('sofía@example.mx');
    expect(checkEmail(`  SOFI\u0301A@Example.MX \t`)).toMatchObject({ ok: true, email: 'sofía@example.mx' });
    expect(normalizeEmail('\uFEFFana@example.mx')).toBe('ana@example.mx');
    expect(checkEmail('\u00A0ana@example.mx\u00A0')).toMatchObject({ ok: true, email: 'ana@example.mx' });
  });

  const refused: Array<[string, EmailProblem]> = [
    ['', 'missing'],
    ['   ', 'missing'],
    ['not-an-email', 'no_at'],
    ['ana.example.mx', 'no_at'],
    ['ana lopez@example.mx', 'space'],
    ['ana@exam ple.mx', 'space'],
    ['ana\u00A0lopez@example.mx', 'space'],
    ['Ana López <ana@example.mx>', 'space'],
    ['ana\u200B@example.mx', 'invisible'],
    ['ana\u202E@example.mx', 'invisible'],
    ['ana\u0007@example.mx', 'invisible'],
    ['ana@example.mx\u0000', 'invisible'],
    ['"ana lopez"@example.mx', 'quoted'],
    ['"ana"@example.mx', 'quoted'],
    ['ana@lopez@example.mx', 'several_at'],
    ['@example.mx', 'local_empty'],
    ['.ana@example.mx', 'local_dot'],
    ['ana.@example.mx', 'local_dot'],
    ['ana..lopez@example.mx', 'local_dot'],
    ['ana,lopez@example.mx', 'local_char'],
    ['ana(x)@example.mx', 'local_char'],
    ['ana"x@example.mx', 'local_char'],
    ['ana\\x@example.mx', 'local_char'],
    ['ana:x@example.mx', 'local_char'],
    ['mailto:ana@example.mx', 'local_char'],
    ['ana<@example.mx', 'local_char'],
    ['ana[1]@example.mx', 'local_char'],
    ['ana😀@example.mx', 'local_char'],
    ['ana—lopez@example.mx', 'local_char'],
    ['ana¿@example.mx', 'local_char'],
    [`${'a'.repeat(65)}@example.mx`, 'local_too_long'],
    [`${'é'.repeat(33)}@example.mx`, 'local_too_long'],
    ['ana@', 'domain_empty'],
    ['ana@[192.168.0.1]', 'domain_literal'],
    ['ana@[IPv6:::1]', 'domain_literal'],
    ['ana@example.mx.', 'domain_dot'],
    ['ana@.example.mx', 'domain_dot'],
    ['ana@example..mx', 'domain_dot'],
    ['ana@localhost', 'domain_no_dot'],
    ['ana@example', 'domain_no_dot'],
    ['ana@ex_ample.mx', 'domain_char'],
    ['ana@example.mx;', 'domain_char'],
    ['ana@exam+ple.mx', 'domain_char'],
    ['ana@exa😀mple.mx', 'domain_char'],
    ['ana@\u0301example.mx', 'domain_char'],
    ['ana@-example.mx', 'domain_hyphen'],
    ['ana@example-.mx', 'domain_hyphen'],
    [`ana@${'a'.repeat(64)}.mx`, 'domain_label_too_long'],
    [`ana@${'ü'.repeat(60)}.mx`, 'domain_label_too_long'],
    [`ana@${Array.from({ length: 4 }, () => 'b'.repeat(63)).join('.')}.mx`, 'domain_too_long'],
    ['ana@1.2.3.4', 'tld'],
    ['ana@example.c', 'tld'],
    ['ana@example.123', 'tld'],
    [`${'a'.repeat(64)}@${Array.from({ length: 3 }, () => 'b'.repeat(62)).join('.')}.mx`, 'too_long'],
  ];

  it.each(refused)('refuses %j (%s)', (input, problem) => {
    expect(problemOf(input)).toBe(problem);
    expect(isValidEmail(input)).toBe(false);
  });

  it('every refusal has words, naming the offending character where there is one', () => {
    for (const p of EMAIL_PROBLEMS) expect(describeEmailProblem({ problem: p }).length).toBeGreaterThan(5);
    expect(describeEmailProblem(checkEmail('ana,lopez@example.mx') as { problem: EmailProblem; char?: string })).toBe(
      'the part before the @ contains a character e-mail addresses cannot have: ","',
    );
    expect(describeEmailProblem(checkEmail('ana\u200B@example.mx') as { problem: EmailProblem; char?: string })).toContain('U+200B');
    // Every code the rule can return is listed (the routes translate by code).
    expect(new Set(refused.map(([, p]) => p))).toEqual(new Set(EMAIL_PROBLEMS));
  });

  it('length limits are in bytes on the wire: 64 for the local part, 254 for the address', () => {
    expect(isValidEmail(`${'a'.repeat(64)}@example.mx`)).toBe(true);
    expect(isValidEmail(`${'é'.repeat(32)}@example.mx`)).toBe(true);
    const domain = `${'b'.repeat(61)}.${'b'.repeat(61)}.${'b'.repeat(62)}.mx`;
    const at254 = `${'a'.repeat(64)}@${domain}`;
    expect(at254.length).toBe(254);
    expect(isValidEmail(at254)).toBe(true);
    expect(problemOf(`${'a'.repeat(64)}@b${domain}`)).toBe('too_long');
    // A Unicode domain counts in its A-label form: 270 bytes of UTF-8, 236 on the wire.
    const wide = `${'é'.repeat(32)}@${'ü'.repeat(40)}.${'b'.repeat(60)}.${'b'.repeat(60)}.mx`;
    expect(new TextEncoder().encode(wide).length).toBe(270);
    expect(checkEmail(wide)).toMatchObject({ ok: true, asciiDomain: `xn--tda${'a'.repeat(39)}.${'b'.repeat(60)}.${'b'.repeat(60)}.mx` });
  });

  it('as a zod field: yields the normalised address, or an issue with the code and plain words', () => {
    expect(EmailSchema.parse(' Sofía.392@Example.MX ')).toBe('sofía.392@example.mx');
    const bad = EmailSchema.safeParse('ana@localhost');
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]).toMatchObject({
      message: 'Not a valid e-mail address: the domain has no dot (like example.com).',
      params: { emailProblem: 'domain_no_dot' },
    });
    expect(EmailSchema.safeParse(42).success).toBe(false);
  });
});
