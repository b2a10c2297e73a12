import { createInstance, type i18n, type Module, type Resource, type TFunction } from 'i18next';

/**
 * Translation and formatting machinery shared by the web app (app/) and the jobs (customer
 * e-mails): an i18next instance made from catalogues handed in, and Intl formatters bound to a
 * locale and a time zone. It knows no catalogue, language or product word: callers bring those.
 */

export type { i18n as I18n, Module, Resource, TFunction };

export interface I18nOptions {
  /** The language this instance speaks (callers keep one instance per language). */
  lng: string;
  /** `{ [lng]: { [namespace]: catalogue } }`, already loaded: nothing is fetched. */
  resources: Resource;
  ns: readonly string[];
  defaultNS: string;
  /**
   * Where a missing key is looked up next. `false` (the default) shows the key itself, which a
   * test or a reader notices, instead of quietly showing the other language.
   */
  fallbackLng?: string | false;
  /** i18next plugins, e.g. react-i18next's initReactI18next in the browser. */
  plugins?: Module[];
  /**
   * The Intl locale `{{n, number}}` formats with for a language (e.g. es → es-MX); i18next's
   * own would use the bare language, and Spanish alone groups digits as 1.234.567.
   */
  intlLocale?: (lng: string) => string;
}

const PLURAL_SUFFIX = /_(zero|one|two|few|many|other)$/;

/**
 * Catalogues give `_one` and `_other` (what English and Spanish readers think of), but Intl's
 * plural rules have more forms in some languages: Spanish uses `many` for a round million, and
 * i18next would then show the bare key. Each missing form is filled with the `_other` text.
 */
function withAllPluralForms(resources: Resource): Resource {
  const out: Resource = {};
  for (const [lng, namespaces] of Object.entries(resources)) {
    let categories: string[];
    try {
      categories = new Intl.PluralRules(lng).resolvedOptions().pluralCategories;
    } catch {
      categories = ['one', 'other'];
    }
    const fill = (node: unknown): unknown => {
      if (!node || typeof node !== 'object' || Array.isArray(node)) return node;
      const copy: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) copy[k] = fill(v);
      for (const [k, v] of Object.entries(node)) {
        if (!k.endsWith('_other') || typeof v !== 'string') continue;
        const base = k.slice(0, -'_other'.length);
        for (const c of categories) if (!(`${base}_${c}` in copy)) copy[`${base}_${c}`] = v;
      }
      return copy;
    };
    out[lng] = fill(namespaces) as Resource[string];
  }
  return out;
}

/**
 * A ready instance: with the catalogues given and `initImmediate: false`, i18next initialises
 * synchronously, so the first render (server or hydration) already has every string.
 */
export function createI18n(opts: I18nOptions): i18n {
  const instance = createInstance();
  for (const p of opts.plugins ?? []) instance.use(p);
  void instance.init({
    lng: opts.lng,
    resources: withAllPluralForms(opts.resources),
    ns: [...opts.ns],
    defaultNS: opts.defaultNS,
    fallbackLng: opts.fallbackLng ?? false,
    initImmediate: false,
    // React and our HTML templates escape what they output; escaping here would do it twice.
    interpolation: { escapeValue: false },
    returnNull: false,
    returnEmptyString: false,
    react: { useSuspense: false },
  });
  const intlLocale = opts.intlLocale;
  if (intlLocale) {
    instance.services.formatter?.add('number', (value, lng, o) => new Intl.NumberFormat(intlLocale(lng ?? opts.lng), o).format(value));
  }
  return instance;
}

/** A `t` bound to one language and namespace (other namespaces stay reachable as `ns:key`). */
export function fixedT(instance: i18n, lng: string, ns: string): TFunction {
  return instance.getFixedT(lng, ns);
}

// ---------------------------------------------------------------- formatting

export type DateInput = Date | string | number;

export interface Formatters {
  /** The Intl locale (e.g. es-MX) and IANA time zone these formatters use. */
  locale: string;
  timeZone: string;
  /** 29 nov 2026 · Nov 29, 2026 */
  date(v: DateInput): string;
  /** 29 nov 2026, 14:05 · Nov 29, 2026, 14:05 (24-hour clock in both: no a.m./p.m. ambiguity). */
  dateTime(v: DateInput, opts?: { seconds?: boolean }): string;
  /** 14:05 */
  time(v: DateInput, opts?: { seconds?: boolean }): string;
  /**
   * A calendar day stored as YYYY-MM-DD (a due date, a day filter): 30 nov 2026 · Nov 30, 2026,
   * the same day in every time zone (it is not a moment). Other text comes back as it is.
   */
  day(isoDay: string): string;
  /** hace 3 min · 3 min. ago · en 2 h · in 2 hr. · ahora · now · hace 2 días · 2 days ago */
  relative(v: DateInput, now?: number): string;
  /** A length of time without direction: 2 h 5 min · 2 hr 5 min (the two largest units). */
  duration(ms: number): string;
  /** 1,234,567.5 (es-MX and en-US group the same way) */
  number(n: number, opts?: Intl.NumberFormatOptions): string;
  /** A ratio as a percentage: 0.123 → 12.3% (both) */
  percent(ratio: number, maxFractionDigits?: number): string;
}

// Intl objects are costly to build and immutable: one per (locale, zone, options).
const cache = new Map<string, Intl.DateTimeFormat | Intl.RelativeTimeFormat | Intl.NumberFormat | Intl.ListFormat>();
function cached<T extends Intl.DateTimeFormat | Intl.RelativeTimeFormat | Intl.NumberFormat | Intl.ListFormat>(
  key: string,
  make: () => T,
): T {
  let v = cache.get(key) as T | undefined;
  if (!v) {
    v = make();
    cache.set(key, v);
  }
  return v;
}

function toDate(v: DateInput): Date | null {
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Formatters for one locale and time zone. An unreadable date comes back as the text it was
 * given (or an empty string), never an exception in the middle of a page.
 */
export function createFormatters(locale: string, timeZone: string): Formatters {
  const dtf = (name: string, o: Intl.DateTimeFormatOptions) =>
    cached(`dt|${locale}|${timeZone}|${name}`, () => new Intl.DateTimeFormat(locale, { timeZone, ...o }));
  const clock = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' } as const;
  const day = { year: 'numeric', month: 'short', day: 'numeric' } as const;
  const withDate = (v: DateInput, f: (d: Date) => string) => {
    const d = toDate(v);
    return d ? f(d) : typeof v === 'string' ? v : '';
  };
  const rtf = (numeric: 'auto' | 'always') =>
    cached(`rt|${locale}|${numeric}`, () => new Intl.RelativeTimeFormat(locale, { numeric, style: 'short' }));
  const unit = (n: number, u: 'day' | 'hour' | 'minute' | 'second') =>
    cached(`nu|${locale}|${u}`, () => new Intl.NumberFormat(locale, { style: 'unit', unit: u, unitDisplay: 'short' })).format(n);

  return {
    locale,
    timeZone,
    date: (v) => withDate(v, (d) => dtf('date', day).format(d)),
    dateTime: (v, o) =>
      withDate(v, (d) => (o?.seconds ? dtf('dts', { ...day, ...clock, second: '2-digit' }) : dtf('dt', { ...day, ...clock })).format(d)),
    time: (v, o) => withDate(v, (d) => (o?.seconds ? dtf('ts', { ...clock, second: '2-digit' }) : dtf('t', clock)).format(d)),
    day: (isoDay) =>
      /^\d{4}-\d{2}-\d{2}$/.test(isoDay)
        ? withDate(`${isoDay}T00:00:00Z`, (d) =>
            cached(`day|${locale}`, () => new Intl.DateTimeFormat(locale, { timeZone: 'UTC', ...day })).format(d),
          )
        : isoDay,
    relative(v, now = Date.now()) {
      return withDate(v, (d) => {
        const ms = d.getTime() - now;
        const abs = Math.abs(ms);
        const sign = ms < 0 ? -1 : 1;
        if (abs < 45 * SECOND) return rtf('auto').format(0, 'second');
        if (abs < 59.5 * MINUTE) return rtf('always').format(sign * Math.round(abs / MINUTE), 'minute');
        if (abs < 36 * HOUR) return rtf('always').format(sign * Math.round(abs / HOUR), 'hour');
        // From 36 h on, whole days ("hace 2 días", never "anteayer").
        return rtf('always').format(sign * Math.round(abs / DAY), 'day');
      });
    },
    duration(ms) {
      const abs = Math.abs(Math.round(ms));
      if (abs < MINUTE) return unit(Math.floor(abs / SECOND), 'second');
      const parts: Array<[number, 'day' | 'hour' | 'minute']> = [
        [Math.floor(abs / DAY), 'day'],
        [Math.floor((abs % DAY) / HOUR), 'hour'],
        [Math.floor((abs % HOUR) / MINUTE), 'minute'],
      ];
      const first = parts.findIndex(([n]) => n > 0);
      const shown = parts.slice(first, first + 2).filter(([n]) => n > 0);
      const list = cached(`lf|${locale}`, () => new Intl.ListFormat(locale, { type: 'unit', style: 'narrow' }));
      return list.format(shown.map(([n, u]) => unit(n, u)));
    },
    number: (n, o) => (o ? new Intl.NumberFormat(locale, o) : cached(`n|${locale}`, () => new Intl.NumberFormat(locale))).format(n),
    percent: (ratio, digits = 1) =>
      cached(`p|${locale}|${digits}`, () => new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: digits })).format(
        ratio,
      ),
  };
}

// ---------------------------------------------------------------- catalogue checks

type CatalogueTree = { [key: string]: unknown };

/** `a.b.c` → leaf value, for a nested catalogue. */
export function flattenCatalogue(tree: CatalogueTree, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [kk, vv] of flattenCatalogue(v as CatalogueTree, key)) out.set(kk, vv);
    else out.set(key, v);
  }
  return out;
}

/** The interpolation variables and nestings of a text: `{{name}}`, `{{n, number}}` → name, n; `$t(ns:key)`. */
export function catalogueVariables(text: string): string[] {
  const found = [...text.matchAll(/\{\{\s*([\w.]+)\s*(?:,[^}]*)?\}\}|\$t\(([^)]+)\)/g)].map((m) => m[1] ?? `$t(${m[2]})`);
  return [...new Set(found)].sort();
}

/**
 * What keeps two languages' versions of one catalogue from being interchangeable: keys only one
 * has, values that are not text or are empty, texts whose variables differ, plurals without both
 * `_one` and `_other`. An empty list means they match. `label` prefixes each problem.
 */
export function catalogueProblems(catalogues: Record<string, CatalogueTree>, label = ''): string[] {
  const problems: string[] = [];
  const flat = Object.entries(catalogues).map(([lng, tree]) => [lng, flattenCatalogue(tree)] as const);
  const at = (key: string) => (label ? `${label}:${key}` : key);
  for (const [lng, cat] of flat) {
    for (const [otherLng, other] of flat) {
      if (otherLng === lng) continue;
      for (const k of cat.keys()) if (!other.has(k)) problems.push(`${at(k)} is in ${lng} but not in ${otherLng}`);
    }
    for (const [k, v] of cat) {
      if (typeof v !== 'string') problems.push(`${at(k)} in ${lng} is not text`);
      else if (!v.trim()) problems.push(`${at(k)} in ${lng} is empty`);
    }
    const bases = new Set([...cat.keys()].filter((k) => PLURAL_SUFFIX.test(k)).map((k) => k.replace(PLURAL_SUFFIX, '')));
    for (const b of bases) {
      for (const form of ['one', 'other']) if (!cat.has(`${b}_${form}`)) problems.push(`${at(b)} in ${lng} has no _${form} form`);
    }
  }
  const [first, ...rest] = flat;
  if (first) {
    for (const [lng, cat] of rest) {
      for (const [k, v] of first[1]) {
        const w = cat.get(k);
        if (typeof v !== 'string' || typeof w !== 'string') continue;
        const a = catalogueVariables(v).join(', ');
        const b = catalogueVariables(w).join(', ');
        if (a !== b) problems.push(`${at(k)} uses {${a}} in ${first[0]} but {${b}} in ${lng}`);
      }
    }
  }
  return problems;
}
