import { LanguageDetector } from 'remix-i18next/server';
import { operatorPreferences, type OperatorPreferences } from '../db/repositories/operators.js';
import { isLanguage, isTimeZone, type TimeZone } from '../lib/locales';
import { LANGUAGES, type Language } from './i18n';
import { services } from './services.server';

/**
 * Which language and time zone a request is answered in. Apart from app/i18n.server.ts (the `t`
 * and formatters for loaders and actions) so that app/auth.server.ts can word its refusals in the
 * reader's language without an import cycle.
 *
 * Language: the operator's own setting (/account, or the switch in the header; from the moment
 * their password is accepted, so the second-factor pages too), else the browser's
 * Accept-Language (the first of its languages, by preference, that we speak), else
 * DEFAULT_LOCALE. Time zone: the operator's setting, else DEFAULT_TIME_ZONE.
 */

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
 * The language and time zone for this request, given the operator's stored preferences (null for
 * someone not signed in).
 */
export async function localeFor(request: Request, prefs: Partial<OperatorPreferences> | null): Promise<RequestLocale> {
  const { env } = await services();
  const locale = await detect(request, prefs?.locale, env.DEFAULT_LOCALE);
  const timeZone = isTimeZone(prefs?.timeZone) ? prefs.timeZone : env.DEFAULT_TIME_ZONE;
  return { locale, timeZone };
}

/** The same, for a signed-in operator (their stored setting) or nobody (null). */
export async function localeForOperator(request: Request, operatorId: string | null): Promise<RequestLocale> {
  if (!operatorId) return localeFor(request, null);
  const { db } = await services();
  return localeFor(request, await operatorPreferences(db, operatorId));
}
