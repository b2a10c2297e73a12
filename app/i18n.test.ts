import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KYC_STATES, ROLES } from '../db/schema.js';
import { PLURAL_SUFFIX } from '../lib/i18n.js';
import { TIME_ZONES } from '../lib/locales.js';
import { createConsoleI18n, LANGUAGES, NAMESPACES, resources } from './i18n.js';
import { NAV } from './nav.js';

/**
 * The catalogues are complete: both languages have the same keys in every namespace, no empty
 * text, the same interpolation variables, both plural forms, and every file is registered.
 */

type Tree = { [k: string]: string | Tree };

function flatten(tree: Tree, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [kk, vv] of flatten(v, key)) out.set(kk, vv);
    else out.set(key, v);
  }
  return out;
}

/** `{{name}}`, `{{n, number}}` → name, n; `$t(ns:key)` nesting counts as a variable too. */
const variables = (text: string): string[] =>
  [...new Set([...text.matchAll(/\{\{\s*([\w.]+)\s*(?:,[^}]*)?\}\}|\$t\(([^)]+)\)/g)].map((m) => m[1] ?? `$t(${m[2]})`))].sort();

const catalogue = (lng: string, ns: string) => flatten((resources as unknown as Record<string, Record<string, Tree>>)[lng]![ns]!);

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
    describe(ns, () => {
      const es = catalogue('es', ns);
      const en = catalogue('en', ns);

      it('has the same keys in Spanish and English', () => {
        expect(
          [...es.keys()].filter((k) => !en.has(k)),
          `in es but not in en (${ns})`,
        ).toEqual([]);
        expect(
          [...en.keys()].filter((k) => !es.has(k)),
          `in en but not in es (${ns})`,
        ).toEqual([]);
      });

      it('has no empty or non-text values', () => {
        for (const [lng, cat] of [
          ['es', es],
          ['en', en],
        ] as const) {
          for (const [k, v] of cat) {
            expect(typeof v, `${lng}/${ns}:${k}`).toBe('string');
            expect((v as string).trim(), `${lng}/${ns}:${k} is empty`).not.toBe('');
          }
        }
      });

      it('uses the same interpolation variables in both languages', () => {
        for (const [k, v] of es) {
          if (typeof v !== 'string' || typeof en.get(k) !== 'string') continue;
          expect(variables(v), `${ns}:${k}`).toEqual(variables(en.get(k) as string));
        }
      });

      it('gives every plural both _one and _other', () => {
        for (const cat of [es, en]) {
          const bases = new Set([...cat.keys()].filter((k) => PLURAL_SUFFIX.test(k)).map((k) => k.replace(PLURAL_SUFFIX, '')));
          for (const b of bases) {
            expect(cat.has(`${b}_one`), `${ns}:${b}_one`).toBe(true);
            expect(cat.has(`${b}_other`), `${ns}:${b}_other`).toBe(true);
          }
        }
      });
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
