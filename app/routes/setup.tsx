import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, useActionData, useLoaderData } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { z } from 'zod';
import { PUBLIC_FORM_MAX_BYTES, readPublicForm, sameOrigin, sessionHeadersFor } from '~/auth.server';
import { pageTitle } from '~/i18n';
import { i18nFor } from '~/i18n.server';
import { fieldErrors } from '~/schemas';
import { createFirstAdmin, setupAvailable } from '~/setup.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'auth:setup.page_title') }];

/** Messages are keys of the `auth` catalogue; the page words them. */
const SetupSchema = z.object({
  token: z.string({ message: 'setup.errors.token' }).min(10, 'setup.errors.token'),
  email: z.string({ message: 'setup.errors.email_invalid' }).trim().toLowerCase().email('setup.errors.email_invalid'),
  name: z.string({ message: 'setup.errors.name_missing' }).trim().min(1, 'setup.errors.name_missing').max(100, 'setup.errors.name_long'),
  password: z
    .string({ message: 'setup.errors.password_short' })
    .min(10, 'setup.errors.password_short')
    .max(200, 'setup.errors.password_long'),
});

/** Public, gated by the one-time token printed in the server log at first start. */
export async function loader({ request }: LoaderFunctionArgs) {
  const token = new URL(request.url).searchParams.get('token');
  const ok = await setupAvailable(token);
  if (!ok) {
    const { t } = await i18nFor(request, 'auth');
    throw new Response(t('setup.invalid_link'), { status: 404 });
  }
  return { token: token! };
}

/** `errors`: field → key; `form`: a refusal of the whole form (a key and its values). All in the `auth` catalogue. */
type Refusal = { code: string; values?: Record<string, number> };
const refused = (form: Refusal, status: number) => data({ errors: {} as Record<string, string>, form: form as Refusal | null }, { status });

export async function action({ request }: ActionFunctionArgs) {
  if (!(await sameOrigin(request))) return refused({ code: 'setup.cross_site' }, 403);
  const read = await readPublicForm(request);
  if (!read.ok) return refused({ code: 'login.too_large', values: { kb: PUBLIC_FORM_MAX_BYTES / 1024 } }, read.status);
  const parsed = SetupSchema.safeParse(Object.fromEntries(read.form.entries()));
  if (!parsed.success) return data({ errors: fieldErrors(parsed.error), form: null as Refusal | null }, { status: 400 });
  const r = await createFirstAdmin(request, parsed.data.token, parsed.data);
  if (!r.ok) return refused({ code: r.code }, 409);
  throw redirect('/?flash=welcome', { headers: await sessionHeadersFor(request, r.operatorId) });
}

export default function Setup() {
  const { t } = useTranslation('auth');
  const { token } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const errors: Record<string, string> = result?.errors ?? {};
  const form = result?.form;
  const fieldError = (name: string) => (errors[name] ? <p className="error">{t(errors[name])}</p> : null);
  return (
    <main className="page narrow">
      <h1>{t('setup.heading')}</h1>
      <p>{t('setup.intro')}</p>
      {form ? (
        <div className="toast error" role="alert">
          {t(form.code, form.values ?? {})}
        </div>
      ) : null}
      <Form method="post" className="card">
        <input type="hidden" name="token" value={token} />
        <label htmlFor="name">{t('setup.name')}</label>
        <input id="name" name="name" required />
        {fieldError('name')}
        <label htmlFor="email">{t('setup.email')}</label>
        <input id="email" name="email" type="email" autoComplete="username" required />
        {fieldError('email')}
        <label htmlFor="password">{t('setup.password')}</label>
        <input id="password" name="password" type="password" autoComplete="new-password" minLength={10} required />
        {fieldError('password')}
        {fieldError('token')}
        <p>
          <button type="submit">{t('setup.submit')}</button>
        </p>
      </Form>
    </main>
  );
}
