import { describe, expect, it } from 'vitest';
import { NOTIFICATION_KINDS } from '../../db/schema.js';
import { checkEmailAddress, classifySmtpError } from './channel.js';
import { defaultLocale, render, TemplateError } from './templates.js';

describe('templates', () => {
  it('MX and DO default to Spanish, anyone else to English', () => {
    expect(defaultLocale('MX')).toBe('es');
    expect(defaultLocale('DO')).toBe('es');
    expect(defaultLocale(null)).toBe('en');
  });

  for (const kind of NOTIFICATION_KINDS) {
    for (const locale of ['es', 'en'] as const) {
      it(`${kind}/${locale}: subject, link in text and HTML, html lang`, () => {
        const r = render(kind, locale, { name: 'Ana', linkUrl: 'https://verify.example/s/a?b=1&c=2' });
        expect(r.subject.length).toBeGreaterThan(5);
        expect(r.text).toContain('https://verify.example/s/a?b=1&c=2');
        expect(r.html).toContain('href="https://verify.example/s/a?b=1&amp;c=2"');
        expect(r.html).toContain(`<html lang="${locale}">`);
        expect(r.short).toContain('https://verify.example/s/a?b=1&c=2');
      });
    }
  }

  it('English retry copy says how to try again', () => {
    const r = render('kyc_retry', 'en', { name: null, linkUrl: 'https://v.example/x' });
    expect(r.subject).toBe('Your verification was not approved — here is how to try again');
    expect(r.text).toMatch(/^Hello,/);
    expect(r.text).toContain('Before you try again:');
  });

  it('refuses a link that is not http(s) and escapes names', () => {
    expect(() => render('kyc_link', 'es', { name: 'x', linkUrl: 'javascript:alert(1)' })).toThrow(TemplateError);
    expect(() => render('kyc_link', 'es', { name: 'x', linkUrl: 'not a url' })).toThrow(TemplateError);
    const r = render('kyc_link', 'es', { name: '"><img src=x onerror=1>\nBcc: x@y', linkUrl: 'https://v.example/x' });
    expect(r.html).not.toContain('<img');
    expect(r.text.split('\n')[0]).toBe('Hola, "><img src=x onerror=1> Bcc: x@y:');
  });
});

describe('channel helpers', () => {
  it('checks addresses', () => {
    expect(checkEmailAddress('ana@example.mx')).toBeNull();
    for (const bad of ['', 'ana', 'ana@', '@x.mx', 'a b@x.mx', 'ana@x', 'a..b@x.mx', `${'a'.repeat(65)}@x.mx`])
      expect(checkEmailAddress(bad)).not.toBeNull();
  });

  it('classifies SMTP errors: recipient 5xx permanent, 4xx and network temporary', () => {
    expect(
      classifySmtpError(Object.assign(new Error('x'), { responseCode: 550, command: 'RCPT TO', response: '550 no such user' })).permanent,
    ).toBe(true);
    expect(
      classifySmtpError(Object.assign(new Error('x'), { responseCode: 554, command: 'DATA', response: '554 rejected' })).permanent,
    ).toBe(false);
    expect(classifySmtpError(Object.assign(new Error('x'), { responseCode: 451, command: 'RCPT TO' })).permanent).toBe(false);
    expect(classifySmtpError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ESOCKET' })).permanent).toBe(false);
    expect(classifySmtpError(Object.assign(new Error('Invalid recipient'), { code: 'EENVELOPE' })).permanent).toBe(true);
  });
});
