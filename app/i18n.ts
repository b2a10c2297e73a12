import { createI18n, fixedT, type I18n, type Module, type Resource, type TFunction } from '../lib/i18n';
import { INTL_LOCALE, LANGUAGES, type Language } from '../lib/locales';
import esCommon from './locales/es/common.json';
import esAuth from './locales/es/auth.json';
import esDashboard from './locales/es/dashboard.json';
import esAccount from './locales/es/account.json';
import esUsers from './locales/es/users.json';
import esImports from './locales/es/imports.json';
import esReview from './locales/es/review.json';
import esNotifications from './locales/es/notifications.json';
import esInbox from './locales/es/inbox.json';
import esQueues from './locales/es/queues.json';
import esCapaLog from './locales/es/capa-log.json';
import esCapa from './locales/es/capa.json';
import esDrift from './locales/es/drift.json';
import esRefresh from './locales/es/refresh.json';
import esAudit from './locales/es/audit.json';
import esOperators from './locales/es/operators.json';
import esSettings from './locales/es/settings.json';
import esAlerts from './locales/es/alerts.json';
import esEvidence from './locales/es/evidence.json';
import enCommon from './locales/en/common.json';
import enAuth from './locales/en/auth.json';
import enDashboard from './locales/en/dashboard.json';
import enAccount from './locales/en/account.json';
import enUsers from './locales/en/users.json';
import enImports from './locales/en/imports.json';
import enReview from './locales/en/review.json';
import enNotifications from './locales/en/notifications.json';
import enInbox from './locales/en/inbox.json';
import enQueues from './locales/en/queues.json';
import enCapaLog from './locales/en/capa-log.json';
import enCapa from './locales/en/capa.json';
import enDrift from './locales/en/drift.json';
import enRefresh from './locales/en/refresh.json';
import enAudit from './locales/en/audit.json';
import enOperators from './locales/en/operators.json';
import enSettings from './locales/en/settings.json';
import enAlerts from './locales/en/alerts.json';
import enEvidence from './locales/en/evidence.json';

/**
 * The console's i18n configuration, shared by the server render and the browser. Every catalogue
 * is bundled (imported here) rather than fetched: the first paint and the hydration already have
 * every string of both languages, so there is no flash of the other language, and switching
 * language needs no request. A new namespace is one JSON file per language plus a line in each
 * list below.
 */
export { LANGUAGES, INTL_LOCALE, type Language };

export const NAMESPACES = [
  'common',
  'auth',
  'dashboard',
  'account',
  'users',
  'imports',
  'review',
  'notifications',
  'inbox',
  'queues',
  'capa-log',
  'capa',
  'drift',
  'refresh',
  'audit',
  'operators',
  'settings',
  'alerts',
  'evidence',
] as const;
export type Namespace = (typeof NAMESPACES)[number];
export const DEFAULT_NS: Namespace = 'common';

export const resources = {
  es: {
    common: esCommon,
    auth: esAuth,
    dashboard: esDashboard,
    account: esAccount,
    users: esUsers,
    imports: esImports,
    review: esReview,
    notifications: esNotifications,
    inbox: esInbox,
    queues: esQueues,
    'capa-log': esCapaLog,
    capa: esCapa,
    drift: esDrift,
    refresh: esRefresh,
    audit: esAudit,
    operators: esOperators,
    settings: esSettings,
    alerts: esAlerts,
    evidence: esEvidence,
  },
  en: {
    common: enCommon,
    auth: enAuth,
    dashboard: enDashboard,
    account: enAccount,
    users: enUsers,
    imports: enImports,
    review: enReview,
    notifications: enNotifications,
    inbox: enInbox,
    queues: enQueues,
    'capa-log': enCapaLog,
    capa: enCapa,
    drift: enDrift,
    refresh: enRefresh,
    audit: enAudit,
    operators: enOperators,
    settings: enSettings,
    alerts: enAlerts,
    evidence: enEvidence,
  },
} satisfies Record<Language, Record<Namespace, object>> & Resource;

/** The language named by a tag such as `<html lang>`, or null. */
export function languageOf(tag: string | null | undefined): Language | null {
  const primary = (tag ?? '').split('-')[0]!.toLowerCase();
  return (LANGUAGES as readonly string[]).includes(primary) ? (primary as Language) : null;
}

/** A ready i18next instance speaking `lng` (plugins: react-i18next's in the browser). */
export function createConsoleI18n(lng: Language, plugins: Module[] = []): I18n {
  return createI18n({
    lng,
    resources,
    ns: NAMESPACES,
    defaultNS: DEFAULT_NS,
    plugins,
    intlLocale: (l) => INTL_LOCALE[languageOf(l) ?? lng],
  });
}

// Catalogues never change while the app runs: one instance per language serves every server
// render and every meta() (nothing calls changeLanguage on these; the browser's React instance
// is a separate one, made in entry.client.tsx).
const shared = new Map<Language, I18n>();

/** The shared, fixed-language instance for `lng`. */
export function i18nInstance(lng: Language): I18n {
  let i = shared.get(lng);
  if (!i) {
    i = createConsoleI18n(lng);
    shared.set(lng, i);
  }
  return i;
}

/** A `t` for a language and namespace (`ns:key` reaches the others). */
export function getFixedT(lng: Language, ns: Namespace = DEFAULT_NS): TFunction {
  return fixedT(i18nInstance(lng), lng, ns);
}

/**
 * A page title for Remix's `meta`, which cannot use hooks: in the language the root loader chose
 * (`matches` is meta's argument), e.g. `[{ title: pageTitle(matches, 'users:list.page_title') }]`.
 */
export function pageTitle(matches: ReadonlyArray<{ id: string; data?: unknown }>, key: string, values?: Record<string, unknown>): string {
  const root = matches.find((m) => m.id === 'root')?.data as { locale?: string } | undefined;
  return getFixedT(languageOf(root?.locale) ?? 'en')(key, values ?? {});
}
