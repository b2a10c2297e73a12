import { LanguageDetector } from 'remix-i18next/server';
import { createFormatters, fixedT, type Formatters, type I18n, type TFunction } from '../lib/i18n';
import { isLanguage, isTimeZone, type TimeZone } from '../lib/locales';
import { currentSession } from './auth.server';
import { createConsoleI18n, DEFAULT_NS, INTL_LOCALE, LANGUAGES, type Language, type Namespace } from './i18n';
import { services } from './services.server';

/**
 * Which language and time zone a request is answered in, and the `t` and formatters for loaders
 * and actions that must produce words themselves (CSV headers, downloads).
 *
 * Language: the signed-in operator's own setting, else the browser's Accept-Language (the first
 * of its languages, by preference, that we speak), else DEFAULT_LOCALE. Time zone: the
 * operator's setting, else DEFAULT_TIME_ZONE.
 */

export interface Preferences {
  locale: string | null | undefined;
  timeZone: string | null | undefined;
}

export interface RequestLocale {
  locale: Language;
  timeZone: TimeZone;
}

/**
 * remix-i18next's detector with one custom step: the operator's setting when there is one, else
 * the raw Accept-Language header, which the detector matches against our languages in the
 * header's order of preference ("fr-FR, es;q=0.8" is Spanish). Its own header step would first
 * narrow the header to the one locale Intl knows best ("fr-FR") and then find nothing.
 */
async function detect(request: Request, operatorLocale: string | null | undefined, fallback: Language): Promise<Language> {
  const detector = new LanguageDetector({
    supportedLanguages: [...LANGUAGES],
    fallbackLanguage: fallback,
    order: ['custom'],
    findLocale: async (r) => (isLanguage(operatorLocale) ? operatorLocale : r.headers.get('accept-language')),
  });
  try {
    const found = await detector.detect(request);
    return isLanguage(found) ? found : fallback;
  } catch {
    // A header the parser cannot read means no preference, not a failed page.
    return fallback;
  }
}

/**
 * The language and time zone for this request. Pass the operator's stored preferences when the
 * caller already read them (the root loader does); null for someone not signed in.
 */
export async function localeFor(request: Request, prefs: Preferences | null): Promise<RequestLocale> {
  const { env } = await services();
  const locale = await detect(request, prefs?.locale, env.DEFAULT_LOCALE);
  const timeZone = isTimeZone(prefs?.timeZone) ? prefs.timeZone : env.DEFAULT_TIME_ZONE;
  return { locale, timeZone };
}

// Catalogues never change while the process runs, so one instance per language serves every
// request; nothing ever calls changeLanguage on these.
const instances = new Map<Language, I18n>();

/** The server's i18next instance for a language (the one the page is rendered with). */
export function i18nInstance(lng: Language): I18n {
  let i = instances.get(lng);
  if (!i) {
    i = createConsoleI18n(lng);
    instances.set(lng, i);
  }
  return i;
}

/** A `t` for a language and namespace (`ns:key` reaches the others). */
export function getFixedT(lng: Language, ns: Namespace = DEFAULT_NS): TFunction {
  return fixedT(i18nInstance(lng), lng, ns);
}

/** Formatters in a language's Intl locale and a time zone. */
export function formattersFor(lng: Language, timeZone: string): Formatters {
  return createFormatters(INTL_LOCALE[lng], timeZone);
}

export interface RequestI18n extends RequestLocale {
  t: TFunction;
  format: Formatters;
}

/**
 * For loaders and actions: the request's language and time zone (the signed-in operator's, see
 * above), a `t` for `ns`, and the formatters.
 */
export async function i18nFor(request: Request, ns: Namespace = DEFAULT_NS): Promise<RequestI18n> {
  const live = await currentSession(request);
  const where = await localeFor(request, live ? preferencesOf(live.operator) : null);
  return { ...where, t: getFixedT(where.locale, ns), format: formattersFor(where.locale, where.timeZone) };
}

/** An operator row's stored language and time zone (null until they choose). */
export function preferencesOf(operator: object): Preferences {
  const o = operator as { locale?: string | null; timeZone?: string | null };
  return { locale: o.locale ?? null, timeZone: o.timeZone ?? null };
}
