import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { pageTitle } from '~/i18n';
import { saveWebhookSettings, settingsData } from '~/settings.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'settings:page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'admin');
  return settingsData(who);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  return saveWebhookSettings(request, who, who.form);
}

export default function AdminSettings() {
  const { t } = useTranslation('settings');
  const fmt = useFormat();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = navigation.state === 'submitting';
  const errors = result?.errors ?? {};
  const values = result?.formValues ?? {};

  return (
    <main className="page">
      <h1>{t('heading')}</h1>
      <OpsNav />
      <ActionToast result={result} />

      <section className="card">
        <h2>{t('where_heading')}</h2>
        <p className="muted">{t('where_intro', { target: d.usingSandbox ? t('local_sandbox') : d.capaBaseUrl })}</p>
        {d.current ? (
          <dl className="facts">
            <dt>{t('registered_url')}</dt>
            <dd data-testid="current-url">{d.current.url ?? <strong className="error">{t('none_off')}</strong>}</dd>
            <dt>{t('set')}</dt>
            <dd>
              <Time iso={d.current.setAt} /> {t('set_by', { who: d.current.setBy ?? t('unknown') })}
            </dd>
          </dl>
        ) : (
          <p data-testid="current-url">{t('not_set')}</p>
        )}
        <Form method="post" noValidate>
          <CsrfInput />
          <input type="hidden" name="intent" value="set-url" />
          <label htmlFor="url">{t('url_label')}</label>
          <input
            id="url"
            name="url"
            type="url"
            required
            defaultValue={values.url ?? d.current?.url ?? d.suggestedUrl}
            aria-invalid={Boolean(errors.url)}
            aria-describedby={errors.url ? 'url-error' : undefined}
            size={60}
          />
          {errors.url ? (
            <p id="url-error" className="error">
              {t(errors.url)}
            </p>
          ) : (
            <p className="muted">{t(d.production ? 'ours_production' : 'ours', { url: d.suggestedUrl })}</p>
          )}
          <button type="submit" disabled={busy}>
            {t('register')}
          </button>
        </Form>
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="disable" />
          <label>
            <input type="checkbox" name="confirm" value="yes" /> {t('stop_all')}
          </label>
          {errors.confirm ? <p className="error">{t(errors.confirm)}</p> : null}
          <button type="submit" className="secondary" disabled={busy}>
            {t('switch_off')}
          </button>
        </Form>
      </section>

      <section className="card">
        <h2>{t('secrets_heading')}</h2>
        <p className="muted">{t('secrets_intro')}</p>
        <table>
          <thead>
            <tr>
              <th>{t('columns.number')}</th>
              <th>{t('columns.secret')}</th>
              <th>{t('columns.fingerprint')}</th>
              <th>{t('columns.verified')}</th>
              <th>{t('columns.last')}</th>
            </tr>
          </thead>
          <tbody>
            {d.secrets.map((s) => (
              <tr key={s.index}>
                <td>{s.index + 1}</td>
                <td>
                  <code>{s.masked}</code> <span className="muted">{t('characters', { count: s.length })}</span>
                </td>
                <td>
                  <code>{s.fingerprint}</code>
                </td>
                <td>{fmt.number(s.verified30d)}</td>
                <td>
                  <Time iso={s.lastVerifiedAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </main>
  );
}
