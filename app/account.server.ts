import { z } from 'zod';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { operatorPreferences, setOperatorPreferences, type OperatorPreferences } from '../db/repositories/operators.js';
import { LANGUAGES, TIME_ZONES, type Language, type TimeZone } from '../lib/locales';
import { auditAction, type SignedIn } from './auth.server';
import { services } from './services.server';

/**
 * The operator's own page (/account): who they are, and the language and time zone the console
 * speaks to them in. Outcomes are codes of the `account` catalogue; the page words them.
 */

export interface AccountData {
  operator: SignedIn['operator'];
  preferences: OperatorPreferences;
  /** What an unset preference falls back to on this instance. */
  defaults: { locale: Language; timeZone: TimeZone };
  languages: readonly Language[];
  timeZones: readonly TimeZone[];
}

export async function accountData(who: SignedIn): Promise<AccountData> {
  const { db, env } = await services();
  const preferences = (await operatorPreferences(db, who.operator.id)) ?? { locale: null, timeZone: null };
  return {
    operator: who.operator,
    preferences,
    defaults: { locale: env.DEFAULT_LOCALE, timeZone: env.DEFAULT_TIME_ZONE },
    languages: LANGUAGES,
    timeZones: TIME_ZONES,
  };
}

// An empty choice means "no preference of my own" (stored as null).
const orNull = <T extends readonly [string, ...string[]]>(values: T) =>
  z.union([z.literal('').transform(() => null), z.enum(values)], { errorMap: () => ({ message: 'account:preferences.invalid' }) });

const PreferencesSchema = z.object({ locale: orNull(LANGUAGES), timeZone: orNull(TIME_ZONES) });

export type PreferencesOutcome = { ok: true; preferences: OperatorPreferences } | { ok: false; code: string };

/** Saves both preferences from the /account form; audited with what changed. */
export async function savePreferences(request: Request, who: SignedIn, form: FormData): Promise<PreferencesOutcome> {
  const parsed = PreferencesSchema.safeParse({ locale: form.get('locale') ?? '', timeZone: form.get('timeZone') ?? '' });
  if (!parsed.success) return { ok: false, code: 'account:preferences.invalid' };
  return store(request, who, parsed.data);
}

/** The header's language switch: sets the language only, keeping the time zone. */
export async function saveLanguage(request: Request, who: SignedIn, locale: unknown): Promise<PreferencesOutcome> {
  const parsed = z.enum(LANGUAGES).safeParse(locale);
  if (!parsed.success) return { ok: false, code: 'account:preferences.invalid' };
  const { db } = await services();
  const current = (await operatorPreferences(db, who.operator.id)) ?? { locale: null, timeZone: null };
  return store(request, who, { ...current, locale: parsed.data });
}

async function store(request: Request, who: SignedIn, next: OperatorPreferences): Promise<PreferencesOutcome> {
  const { db } = await services();
  const before = (await operatorPreferences(db, who.operator.id)) ?? { locale: null, timeZone: null };
  if (before.locale === next.locale && before.timeZone === next.timeZone) return { ok: true, preferences: next };
  await setOperatorPreferences(db, who.operator.id, next);
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.operatorPreferences,
    targetType: 'operator',
    targetId: who.operator.id,
    outcome: 'ok',
    detail: { from: before, to: next },
  });
  return { ok: true, preferences: next };
}
