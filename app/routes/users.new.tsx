import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useState } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { createUserFromForm, linkLocaleDefaults } from '~/users.server';
import { CsrfInput } from '~/components/csrf';
import { CreateUserSchema, fieldErrors, formToObject, newRequestId } from '~/schemas';

export const meta: MetaFunction = () => [{ title: 'New customer — KYC Desk' }];

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
  const { requestId, localeByCountry } = useLoaderData<typeof loader>();
  const server = useActionData<typeof action>();
  const [clientErrors, setClientErrors] = useState<Record<string, string> | null>(null);
  const errors = clientErrors ?? server?.errors ?? {};
  const v = server?.values ?? {};
  const busy = useNavigation().state !== 'idle';
  // The e-mail's language follows the country until the operator picks one.
  const [country, setCountry] = useState(v.country ?? 'MX');
  const [locale, setLocale] = useState<string | null>(v.locale || null);

  const err = (k: string) =>
    errors[k] ? (
      <p className="error" id={`${k}-error`}>
        {errors[k]}
      </p>
    ) : null;

  return (
    <main className="page narrow">
      <p>
        <Link to="/users">← Users</Link>
      </p>
      <h1>New customer</h1>
      {errors.form ? (
        <div className="toast error" role="alert">
          {errors.form}
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
            setClientErrors(fieldErrors(parsed.error));
          } else {
            setClientErrors(null);
          }
        }}
      >
        <CsrfInput />
        <input type="hidden" name="requestId" value={v.requestId ?? requestId} />
        <label htmlFor="email">E-mail</label>
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
          <legend>Type</legend>
          <label className="inline">
            <input type="radio" name="type" value="INDIVIDUAL" defaultChecked={(v.type ?? 'INDIVIDUAL') === 'INDIVIDUAL'} /> Individual
          </label>{' '}
          <label className="inline">
            <input type="radio" name="type" value="BUSINESS" defaultChecked={v.type === 'BUSINESS'} /> Business
          </label>
        </fieldset>
        {err('type')}

        <label htmlFor="externalUserId">
          External user id <span className="muted">(optional — generated when blank)</span>
        </label>
        <input
          id="externalUserId"
          name="externalUserId"
          defaultValue={v.externalUserId}
          aria-invalid={Boolean(errors.externalUserId)}
          aria-describedby={errors.externalUserId ? 'externalUserId-error' : undefined}
        />
        {err('externalUserId')}

        <label htmlFor="alias">
          Alias <span className="muted">(optional)</span>
        </label>
        <input id="alias" name="alias" defaultValue={v.alias} />
        {err('alias')}

        <label htmlFor="country">Country</label>
        <select id="country" name="country" value={country} onChange={(e) => setCountry(e.target.value)}>
          <option value="MX">Mexico</option>
          <option value="DO">Dominican Republic</option>
        </select>
        {err('country')}

        <label className="inline check">
          <input type="checkbox" name="sendLink" defaultChecked={server ? v.sendLink === 'on' : true} /> Send KYC link now
        </label>
        <label className="inline check">
          <input type="checkbox" name="noEmail" defaultChecked={v.noEmail === 'on'} /> Don’t e-mail the link (I’ll hand it over myself)
        </label>
        <label htmlFor="locale">Language of the e-mail</label>
        <select
          id="locale"
          name="locale"
          value={locale ?? localeByCountry[country as keyof typeof localeByCountry] ?? 'es'}
          onChange={(e) => setLocale(e.target.value)}
        >
          <option value="es">Spanish</option>
          <option value="en">English</option>
        </select>
        {err('locale')}
        {err('requestId')}

        <p>
          <button type="submit" disabled={busy}>
            {busy ? 'Creating…' : 'Create customer'}
          </button>
        </p>
      </Form>
    </main>
  );
}
