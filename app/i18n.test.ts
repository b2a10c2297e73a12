import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KYC_STATES, ROLES } from '../db/schema.js';
import { catalogueProblems } from '../lib/i18n.js';
import { TIME_ZONES } from '../lib/locales.js';
import { createConsoleI18n, LANGUAGES, NAMESPACES, resources } from './i18n.js';
import { NAV } from './nav.js';

/**
 * The catalogues are complete: both languages have the same keys in every namespace, no empty
 * text, the same interpolation variables, both plural forms, and every file is registered.
 */
describe('catalogues', () => {
  it('every JSON file under app/locales is a registered namespace, in both languages', () => {
    for (const lng of LANGUAGES) {
      const files = readdirSync(path.join(import.meta.dirname, 'locales', lng))
        .map((f) => f.replace(/\.json$/, ''))
        .sort();
      expect(files, `app/locales/${lng}`).toEqual([...NAMESPACES].sort());
    }
  });

  for (const ns of NAMESPACES) {
    it(`${ns}: the same keys in Spanish and English, no empty text, the same variables, both plural forms`, () => {
      expect(catalogueProblems({ es: resources.es[ns], en: resources.en[ns] }, ns)).toEqual([]);
    });
  }
});

describe('common words the whole console relies on', () => {
  for (const lng of LANGUAGES) {
    const i18n = createConsoleI18n(lng);
    it(`${lng}: every state, role, nav entry and time zone has a name`, () => {
      for (const s of KYC_STATES) expect(i18n.exists(`common:states.${s}`), s).toBe(true);
      for (const r of ROLES) expect(i18n.exists(`common:roles.${r}`), r).toBe(true);
      for (const n of NAV) expect(i18n.exists(`common:${n.label}`), n.label).toBe(true);
      for (const z of TIME_ZONES) expect(i18n.exists(`common:time_zones.${z}`), z).toBe(true);
      for (const l of LANGUAGES) expect(i18n.exists(`common:languages.${l}`), l).toBe(true);
    });
  }

  it('state names differ by language and plurals agree with the count', () => {
    const es = createConsoleI18n('es');
    const en = createConsoleI18n('en');
    expect(es.t('common:states.REJECTED')).toBe('Rechazado');
    expect(en.t('common:states.REJECTED')).toBe('Rejected');
    expect(es.t('common:words.customers', { count: 1 })).toBe('1 cliente');
    expect(es.t('common:words.customers', { count: 2 })).toBe('2 clientes');
    expect(en.t('common:words.customers', { count: 1 })).toBe('1 customer');
    expect(en.t('common:pager.page_of', { page: 2, total: 5 })).toBe('Page 2 of 5');
    expect(es.t('common:pager.page_of', { page: 2, total: 5 })).toBe('Página 2 de 5');
  });
});
