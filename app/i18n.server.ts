import { createFormatters, type Formatters, type TFunction } from '../lib/i18n';
import { anySession } from './auth.server';
import { DEFAULT_NS, getFixedT, INTL_LOCALE, type Language, type Namespace } from './i18n';
import { localeForOperator, type RequestLocale } from './locale.server';

export { getFixedT, i18nInstance } from './i18n';
export { localeFor, localeForOperator, type RequestLocale } from './locale.server';

/** Formatters in a language's Intl locale and a time zone. */
export function formattersFor(lng: Language, timeZone: string): Formatters {
  return createFormatters(INTL_LOCALE[lng], timeZone);
}

export interface RequestI18n extends RequestLocale {
  t: TFunction;
  format: Formatters;
}

/**
 * For loaders and actions that must produce words themselves (CSV headers, downloads, error
 * responses): the request's language and time zone (app/locale.server.ts), a `t` for `ns`, and
 * the formatters.
 */
export async function i18nFor(request: Request, ns: Namespace = DEFAULT_NS): Promise<RequestI18n> {
  // At any stage of signing in: a session waiting for its second factor knows its operator.
  const live = await anySession(request);
  const where = await localeForOperator(request, live?.operator.id ?? null);
  return { ...where, t: getFixedT(where.locale, ns), format: formattersFor(where.locale, where.timeZone) };
}
