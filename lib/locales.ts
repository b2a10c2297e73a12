/**
 * The console's languages and the time zones an operator may choose. Here, at the bottom of the
 * layers, because the environment schema (lib/config.ts), the operators repository, the web app
 * and the jobs all check values against them.
 */
export const LANGUAGES = ['es', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

/** Where our customers and analysts are (Mexico, the Dominican Republic), plus UTC. */
export const TIME_ZONES = ['America/Mexico_City', 'America/Santo_Domingo', 'UTC'] as const;
export type TimeZone = (typeof TIME_ZONES)[number];

export const isLanguage = (v: unknown): v is Language => typeof v === 'string' && (LANGUAGES as readonly string[]).includes(v);
export const isTimeZone = (v: unknown): v is TimeZone => typeof v === 'string' && (TIME_ZONES as readonly string[]).includes(v);

/**
 * The Intl locale each language formats dates and numbers with: Spanish as written in Mexico
 * (1,234.5 and 12.3 %, which the Dominican Republic shares), English as in the United States.
 */
export const INTL_LOCALE: Record<Language, string> = { es: 'es-MX', en: 'en-US' };
