import { describe, expect, it } from 'vitest';
import { catalogueProblems } from '../../lib/i18n.js';
import en from './locales/en.json';
import es from './locales/es.json';
import { render } from './templates.js';

/** The customer e-mails' catalogues: complete in both languages, and data never read as markup. */
describe('e-mail catalogues', () => {
  it('Spanish and English have the same keys, no empty text, the same variables', () => {
    expect(catalogueProblems({ es, en }, 'email')).toEqual([]);
  });

  it('each message keeps its parts in order: the retry steps in both retry messages, not in the link message', () => {
    const retry = render('kyc_retry', 'es', { name: null, linkUrl: 'https://v.example/x' });
    const lines = retry.text.split('\n');
    expect(lines.indexOf('Antes de volver a intentarlo:')).toBeGreaterThan(lines.indexOf('Intentar de nuevo: https://v.example/x'));
    expect(lines.filter((l) => l.startsWith('  - '))).toHaveLength(4);
    expect(retry.text.indexOf('Revisamos tu verificación')).toBeLessThan(
      retry.text.indexOf('Puedes intentarlo de nuevo con este enlace nuevo:'),
    );
    expect(render('kyc_retry_reminder', 'en', { name: 'Ana', linkUrl: 'https://v.example/x' }).text).toContain('Before you try again:');
    expect(render('kyc_link', 'en', { name: 'Ana', linkUrl: 'https://v.example/x' }).text).not.toContain('Before you try again:');
    expect(render('kyc_link', 'es', { name: 'Ana', linkUrl: 'https://v.example/x' }).short).toBe(
      'Verifica tu identidad para terminar de abrir tu cuenta: https://v.example/x',
    );
  });

  it('a name that looks like template syntax is printed as written, never interpolated or nested', () => {
    const name = '{{url}} $t(kyc_link.subject) <b>';
    const r = render('kyc_link', 'en', { name, linkUrl: 'https://v.example/x' });
    expect(r.text.split('\n')[0]).toBe(`Hello ${name},`);
    expect(r.html).toContain('Hello {{url}} $t(kyc_link.subject) &lt;b&gt;,');
    expect(r.subject).toBe('Your verification link');
  });

  it('an unknown language or message kind is a template error, not a message of keys', () => {
    expect(() => render('kyc_link', 'fr' as 'es', { name: null, linkUrl: 'https://v.example/x' })).toThrow(/no template/);
    expect(() => render('nope' as 'kyc_link', 'es', { name: null, linkUrl: 'https://v.example/x' })).toThrow(/no template/);
  });
});
