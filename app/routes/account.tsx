import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { accountData, savePreferences } from '~/account.server';
import { currentSessionHash, requireMutation, requireOperator, signOut } from '~/auth.server';
import { SecuritySections, type SecurityResult } from '~/components/account-security';
import { securityAction, securityData } from '~/mfa.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { FlashToast, Toast } from '~/components/toast';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'account:page_title') }];

/** Every operator's own page: who they are, and the language and time zone of their console. */
export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return { ...(await accountData(who)), security: await securityData(who, await currentSessionHash(request)) };
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'viewer');
  const intent = who.form.get('intent');
  if (typeof intent === 'string' && intent.startsWith('security-')) {
    const r = await securityAction(request, who, intent, who.form);
    // Signed out everywhere, this browser included: back to the sign-in page.
    if (r.signedOut) throw redirect('/login?flash=signed-out', { headers: await signOut(request, null) });
    return data(r, { status: r.tone === 'ok' ? 200 : 400 });
  }
  if (intent === 'preferences') {
    const r = await savePreferences(request, who, who.form);
    if (!r.ok) return data({ code: r.code }, { status: 400 });
    // A fresh page: the root loader answers in the new language and time zone.
    throw redirect('/account?flash=preferences-saved');
  }
  return data({ code: 'account:unknown_intent' }, { status: 400 });
}

export default function Account() {
  const { t } = useTranslation('account');
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === 'submitting';
  const fmt = useFormat();
  return (
    <main className="page narrow">
      <h1>{t('heading')}</h1>
      <FlashToast />
      {result?.code && !('security' in result) ? <Toast tone="error" text={t(result.code)} /> : null}
      <section className="card" aria-labelledby="me-h">
        <h2 id="me-h">{t('profile.heading')}</h2>
        <dl>
          <dt>{t('profile.name')}</dt>
          <dd>{d.operator.name}</dd>
          <dt>{t('profile.email')}</dt>
          <dd>{d.operator.email}</dd>
          <dt>{t('profile.role')}</dt>
          <dd>{t(`common:roles.${d.operator.role}`)}</dd>
        </dl>
      </section>
      <section className="card" aria-labelledby="prefs-h">
        <h2 id="prefs-h">{t('preferences.heading')}</h2>
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="preferences" />
          <label htmlFor="locale">{t('preferences.language')}</label>
          <select id="locale" name="locale" defaultValue={d.preferences.locale ?? ''}>
            <option value="">{t('preferences.language_auto', { fallback: t(`common:languages.${d.defaults.locale}`) })}</option>
            {d.languages.map((l) => (
              <option key={l} value={l} lang={l}>
                {t(`common:languages.${l}`)}
              </option>
            ))}
          </select>
          <label htmlFor="timeZone">{t('preferences.time_zone')}</label>
          <select id="timeZone" name="timeZone" defaultValue={d.preferences.timeZone ?? ''}>
            <option value="">{t('preferences.time_zone_default', { zone: t(`common:time_zones.${d.defaults.timeZone}`) })}</option>
            {d.timeZones.map((z) => (
              <option key={z} value={z}>
                {t(`common:time_zones.${z}`)}
              </option>
            ))}
          </select>
          {/* The clock of whoever renders: the server's and the browser's minute may differ. */}
          <p className="muted" data-testid="local-time" suppressHydrationWarning>
            {t('preferences.now', { time: fmt.dateTime(Date.now()), zone: t(`common:time_zones.${fmt.timeZone}`) })}
          </p>
          <p>
            <button type="submit" disabled={busy}>
              {t('common:buttons.save')}
            </button>
          </p>
        </Form>
      </section>
      <SecuritySections data={d.security} result={result && 'security' in result ? (result as SecurityResult) : null} />
    </main>
  );
}
