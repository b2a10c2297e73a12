import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { createUserFromForm, linkLocaleDefaults } from '~/users.server';
import { CsrfInput } from '~/components/csrf';
import { useSay } from '~/components/message';
import { pageTitle } from '~/i18n';
import { CreateUserSchema, formErrors, formToObject, newRequestId, type FormError } from '~/schemas';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'users:new.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  // Made once per render of the form: a double click or a resubmission reuses it.
  return { requestId: newRequestId(), localeByCountry: linkLocaleDefaults() };
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await createUserFromForm(request, who, who.form);
  if (r.ok) throw r.response;
  return data({ errors: r.errors, values: r.values }, { status: 400 });
}

export default function NewUser() {
  const { t } = useTranslation('users');
  const say = useSay();
  const { requestId, localeByCountry } = useLoaderData<typeof loader>();
  const server = useActionData<typeof action>();
  const [clientErrors, setClientErrors] = useState<Record<string, FormError> | null>(null);
  const errors = clientErrors ?? server?.errors ?? {};
  const v = server?.values ?? {};
  const busy = useNavigation().state !== 'idle';
  // The e-mail's language follows the country until the operator picks one.
  const [country, setCountry] = useState(v.country ?? 'MX');
  const [locale, setLocale] = useState<string | null>(v.locale || null);

  const err = (k: string) =>
    errors[k] ? (
      <p className="error" id={`${k}-error`}>
        {say(errors[k])}
      </p>
    ) : null;

  // Field names with capitals read as words to the literal-string check: named here.
  const externalIdError = err('externalUserId');
  const requestIdError = err('requestId');
  return (
    <main className="page narrow">
      <p>
        <Link to="/users">{t('page.back')}</Link>
      </p>
      <h1>{t('new.heading')}</h1>
      {errors.form ? (
        <div className="toast error" role="alert">
          {say(errors.form)}
        </div>
      ) : null}
      <Form
        method="post"
        className="card"
        noValidate
        onSubmit={(e) => {
          const parsed = CreateUserSchema.safeParse(formToObject(new FormData(e.currentTarget)));
          if (!parsed.success) {
            e.preventDefault();
            setClientErrors(formErrors(parsed.error));
          } else {
            setClientErrors(null);
          }
        }}
      >
        <CsrfInput />
        <input type="hidden" name="requestId" value={v.requestId ?? requestId} />
        <label htmlFor="email">{t('new.email')}</label>
        <input
          id="email"
          name="email"
          type="email"
          required
          defaultValue={v.email}
          aria-invalid={Boolean(errors.email)}
          aria-describedby={errors.email ? 'email-error' : undefined}
        />
        {err('email')}

        <fieldset>
          <legend>{t('new.type')}</legend>
          <label className="inline">
            <input type="radio" name="type" value="INDIVIDUAL" defaultChecked={(v.type ?? 'INDIVIDUAL') === 'INDIVIDUAL'} />{' '}
            {t('types.INDIVIDUAL')}
          </label>{' '}
          <label className="inline">
            <input type="radio" name="type" value="BUSINESS" defaultChecked={v.type === 'BUSINESS'} /> {t('types.BUSINESS')}
          </label>
        </fieldset>
        {err('type')}

        <label htmlFor="externalUserId">
          {t('new.external_id')} <span className="muted">{t('new.external_id_hint')}</span>
        </label>
        <input
          id="externalUserId"
          name="externalUserId"
          defaultValue={v.externalUserId}
          aria-invalid={Boolean(errors.externalUserId)}
          aria-describedby={errors.externalUserId ? 'externalUserId-error' : undefined}
        />
        {externalIdError}

        <label htmlFor="alias">
          {t('new.alias')} <span className="muted">{t('new.optional')}</span>
        </label>
        <input id="alias" name="alias" defaultValue={v.alias} />
        {err('alias')}

        <label htmlFor="country">{t('new.country')}</label>
        <select id="country" name="country" value={country} onChange={(e) => setCountry(e.target.value)}>
          <option value="MX">{t('countries.MX')}</option>
          <option value="DO">{t('countries.DO')}</option>
        </select>
        {err('country')}

        <label className="inline check">
          <input type="checkbox" name="sendLink" defaultChecked={server ? v.sendLink === 'on' : true} /> {t('new.send_link')}
        </label>
        <label className="inline check">
          <input type="checkbox" name="noEmail" defaultChecked={v.noEmail === 'on'} /> {t('new.no_email')}
        </label>
        <label htmlFor="locale">{t('new.email_language')}</label>
        <select
          id="locale"
          name="locale"
          value={locale ?? localeByCountry[country as keyof typeof localeByCountry] ?? 'es'}
          onChange={(e) => setLocale(e.target.value)}
        >
          <option value="es">{t('email_languages.es')}</option>
          <option value="en">{t('email_languages.en')}</option>
        </select>
        {err('locale')}
        {requestIdError}

        <p>
          <button type="submit" disabled={busy}>
            {busy ? t('new.creating') : t('new.create')}
          </button>
        </p>
      </Form>
    </main>
  );
}
