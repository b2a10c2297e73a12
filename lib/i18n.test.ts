import { describe, expect, it } from 'vitest';
import { catalogueProblems, catalogueVariables, createFormatters, createI18n, fixedT } from './i18n.js';

const resources = {
  es: {
    main: {
      hello: 'Hola, {{name}}',
      customers_one: '{{count}} cliente',
      customers_other: '{{count}} clientes',
      nested: { deep: 'profundo' },
    },
    other: { word: 'otra' },
  },
  en: {
    main: {
      hello: 'Hello, {{name}}',
      customers_one: '{{count}} customer',
      customers_other: '{{count}} customers',
      nested: { deep: 'deep' },
    },
    other: { word: 'other' },
  },
};
const make = (lng: 'es' | 'en') => createI18n({ lng, resources, ns: ['main', 'other'], defaultNS: 'main' });

describe('i18next instance', () => {
  it('is ready as soon as it is made (no await), in the language asked for', () => {
    const i = make('es');
    expect(i.isInitialized).toBe(true);
    expect(i.language).toBe('es');
    expect(i.t('nested.deep')).toBe('profundo');
  });

  it('interpolates without escaping (React and the e-mail templates escape what they output)', () => {
    expect(fixedT(make('es'), 'es', 'main')('hello', { name: 'Ana <López>' })).toBe('Hola, Ana <López>');
    expect(fixedT(make('en'), 'en', 'main')('hello', { name: 'Ana' })).toBe('Hello, Ana');
  });

  it('plurals: 1 cliente / 2 clientes, 0 customers', () => {
    const es = fixedT(make('es'), 'es', 'main');
    const en = fixedT(make('en'), 'en', 'main');
    expect(es('customers', { count: 1 })).toBe('1 cliente');
    expect(es('customers', { count: 2 })).toBe('2 clientes');
    expect(en('customers', { count: 1 })).toBe('1 customer');
    expect(en('customers', { count: 0 })).toBe('0 customers');
  });

  it('a plural form the catalogue does not spell out (Spanish "many": a round million) reads as _other, not as the key', () => {
    const es = fixedT(make('es'), 'es', 'main');
    expect(es('customers', { count: 1_000_000 })).toBe('1000000 clientes');
    expect(es('customers', { count: 0 })).toBe('0 clientes');
  });

  it('{{n, number}} groups digits in the Intl locale given for the language', () => {
    const res = { es: { main: { big: '{{n, number}} filas' } } };
    const plain = createI18n({ lng: 'es', resources: res, ns: ['main'], defaultNS: 'main' });
    const mx = createI18n({ lng: 'es', resources: res, ns: ['main'], defaultNS: 'main', intlLocale: () => 'es-MX' });
    expect(plain.t('big', { n: 1234567 })).toBe('1.234.567 filas');
    expect(mx.t('big', { n: 1234567 })).toBe('1,234,567 filas');
  });

  it('a fixed t reaches other namespaces as ns:key, and shows a missing key as itself (no silent fallback)', () => {
    const t = fixedT(make('es'), 'es', 'main');
    expect(t('other:word')).toBe('otra');
    expect(t('nowhere.to.be.found')).toBe('nowhere.to.be.found');
  });

  it('a fallback language, when asked for, fills a missing key', () => {
    const i = createI18n({
      lng: 'es',
      resources: { es: { main: {} }, en: { main: { only: 'only in English' } } },
      ns: ['main'],
      defaultNS: 'main',
      fallbackLng: 'en',
    });
    expect(i.t('only')).toBe('only in English');
  });
});

describe('formatters', () => {
  // 20:05:09 UTC is 14:05 in Mexico City (UTC-6, no DST since 2022) and 16:05 in Santo Domingo (UTC-4).
  const at = '2026-11-29T20:05:09.000Z';
  const es = (tz: string) => createFormatters('es-MX', tz);
  const en = (tz: string) => createFormatters('en-US', tz);

  it('dates, date-times and times in the operator time zone, 24-hour clock', () => {
    expect(es('America/Mexico_City').dateTime(at)).toBe('29 nov 2026, 14:05');
    expect(es('America/Santo_Domingo').dateTime(at)).toBe('29 nov 2026, 16:05');
    expect(es('UTC').dateTime(at, { seconds: true })).toBe('29 nov 2026, 20:05:09');
    expect(en('America/Mexico_City').dateTime(at)).toBe('Nov 29, 2026, 14:05');
    expect(en('UTC').date(at)).toBe('Nov 29, 2026');
    expect(es('UTC').date(at)).toBe('29 nov 2026');
    expect(en('America/Santo_Domingo').time(at)).toBe('16:05');
    expect(es('America/Mexico_City').time(at, { seconds: true })).toBe('14:05:09');
  });

  it('the date follows the time zone across midnight', () => {
    const lateUtc = '2026-11-30T03:30:00.000Z';
    expect(en('UTC').date(lateUtc)).toBe('Nov 30, 2026');
    expect(en('America/Mexico_City').date(lateUtc)).toBe('Nov 29, 2026');
  });

  it('a calendar day (a due date) is the same day in every time zone', () => {
    expect(es('America/Mexico_City').day('2026-11-30')).toBe('30 nov 2026');
    expect(en('America/Santo_Domingo').day('2026-11-30')).toBe('Nov 30, 2026');
    expect(en('UTC').day('2026-11-30')).toBe('Nov 30, 2026');
    expect(en('UTC').day('someday')).toBe('someday');
  });

  it('accepts Date and epoch milliseconds; an unreadable date comes back as given', () => {
    expect(en('UTC').time(new Date(at))).toBe('20:05');
    expect(en('UTC').time(Date.parse(at))).toBe('20:05');
    expect(en('UTC').dateTime('not a date')).toBe('not a date');
  });

  it('relative durations: hace 3 min / 3 min. ago, ahora / now, whole days from 36 h, the future too', () => {
    const now = Date.parse(at);
    const ago = (ms: number) => new Date(now - ms).toISOString();
    const f = { es: es('UTC'), en: en('UTC') };
    expect(f.es.relative(ago(3 * 60_000), now)).toBe('hace 3 min');
    expect(f.en.relative(ago(3 * 60_000), now)).toBe('3 min. ago');
    expect(f.es.relative(ago(10_000), now)).toBe('ahora');
    expect(f.en.relative(ago(10_000), now)).toBe('now');
    expect(f.es.relative(ago(3 * 3_600_000), now)).toBe('hace 3 h');
    expect(f.en.relative(ago(3 * 3_600_000), now)).toBe('3 hr. ago');
    expect(f.es.relative(ago(30 * 3_600_000), now)).toBe('hace 30 h');
    expect(f.es.relative(ago(40 * 3_600_000), now)).toBe('hace 2 días');
    expect(f.en.relative(ago(40 * 3_600_000), now)).toBe('2 days ago');
    expect(f.es.relative(ago(24 * 3_600_000 * 1.2), now)).toBe('hace 29 h');
    expect(f.es.relative(ago(50 * 3_600_000), now)).toBe('hace 2 días');
    expect(f.es.relative(ago(3 * 86_400_000), now)).toBe('hace 3 días');
    expect(f.en.relative(ago(5 * 86_400_000), now)).toBe('5 days ago');
    expect(f.es.relative(new Date(now + 2 * 3_600_000).toISOString(), now)).toBe('en 2 h');
    expect(f.en.relative(new Date(now + 2 * 3_600_000).toISOString(), now)).toBe('in 2 hr.');
  });

  it('durations without direction keep the two largest units', () => {
    const h = 3_600_000;
    expect(es('UTC').duration(2 * h + 5 * 60_000)).toBe('2 h 5 min');
    expect(en('UTC').duration(2 * h + 5 * 60_000)).toBe('2 hr 5 min');
    expect(es('UTC').duration(3 * 24 * h + 2 * h + 59 * 60_000)).toBe('3 días 2 h');
    expect(en('UTC').duration(-(26 * h))).toBe('1 day 2 hr');
    expect(en('UTC').duration(45_000)).toBe('45 sec');
    expect(es('UTC').duration(24 * h)).toBe('1 día');
  });

  it('numbers and percentages as read in Mexico and the United States', () => {
    expect(es('UTC').number(1234567.5)).toBe('1,234,567.5');
    expect(en('UTC').number(1234567.5)).toBe('1,234,567.5');
    expect(es('UTC').percent(0.1234)).toBe('12.3%');
    expect(en('UTC').percent(0.1234)).toBe('12.3%');
    expect(en('UTC').percent(1 / 3, 0)).toBe('33%');
    expect(es('UTC').number(0.5, { style: 'percent' })).toBe('50%');
  });
});

describe('catalogue checks', () => {
  it('two matching catalogues have no problems', () => {
    expect(catalogueProblems({ es: resources.es.main, en: resources.en.main })).toEqual([]);
  });

  it('names each missing key, empty or non-text value, variable difference and half plural', () => {
    const problems = catalogueProblems(
      {
        es: { a: 'hola {{name}}', b: { c: '' }, only_es: 'x', n_one: 'uno', list: ['no'] },
        en: { a: 'hello {{who}}', b: { c: 'see' }, n_one: 'one', n_other: 'many', list: ['no'] },
      },
      'ns',
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'ns:only_es is in es but not in en',
        'ns:n_other is in en but not in es',
        'ns:b.c in es is empty',
        'ns:list in es is not text',
        'ns:n in es has no _other form',
        'ns:a uses {name} in es but {who} in en',
      ]),
    );
    expect(problems).toHaveLength(7); // …and the English list is not text either
  });

  it('reads variables with formats and nestings', () => {
    expect(catalogueVariables('{{count, number}} de {{ total }} · $t(common:words.all)')).toEqual([
      '$t(common:words.all)',
      'count',
      'total',
    ]);
  });
});
