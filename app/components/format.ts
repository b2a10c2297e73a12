import { useRouteLoaderData } from '@remix-run/react';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { createFormatters, type Formatters } from '../../lib/i18n';
import { INTL_LOCALE, languageOf } from '../i18n';
import type { RootData } from './csrf';

/**
 * Dates, times, durations, numbers and percentages in the operator's language and time zone
 * (both from the root loader). The language is the one i18next speaks right now, so words and
 * numbers switch together when the operator changes language.
 */
export function useFormat(): Formatters {
  const { i18n } = useTranslation();
  const root = useRouteLoaderData('root') as RootData | undefined;
  const lng = languageOf(i18n.language) ?? languageOf(root?.locale) ?? 'en';
  // Without root data (its loader failed) the server and the browser both fall back to UTC.
  const timeZone = root?.timeZone ?? 'UTC';
  return useMemo(() => createFormatters(INTL_LOCALE[lng], timeZone), [lng, timeZone]);
}
