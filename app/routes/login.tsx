import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect, redirectDocument } from '@remix-run/node';
import { Form, useActionData, useLoaderData, useNavigation, useSearchParams } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { currentSession, PUBLIC_FORM_MAX_BYTES, readPublicForm, safeNext, sameOrigin, signIn } from '~/auth.server';
import { FlashToast } from '~/components/toast';
import { pageTitle } from '~/i18n';
import { isSsoFailure, ssoOffer } from '~/sso.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'auth:login.page_title') }];

/** Why a sign-in was refused: a code of the `auth` catalogue with its values, worded by the page. */
type Refusal = { code: string; values?: Record<string, string | number> };

/** Public. A signed-in operator is sent on to where they were going. */
export async function loader({ request }: LoaderFunctionArgs) {
  const url = new URL(request.url);
  const next = safeNext(url.searchParams.get('next'));
  if (await currentSession(request)) throw redirect(next);
  // Why single sign-on sent the browser back here, when it did (only reasons we know are worded).
  const failure = url.searchParams.get('sso');
  return { next, sso: await ssoOffer(), ssoError: isSsoFailure(failure) ? failure : null };
}

/** Public, but only from our own pages (login CSRF: nobody can sign a browser into their account). */
export async function action({ request }: ActionFunctionArgs) {
  if (!(await sameOrigin(request))) return data({ error: { code: 'login.cross_site' } as Refusal }, { status: 403 });
  const read = await readPublicForm(request);
  if (!read.ok)
    return data({ error: { code: 'login.too_large', values: { kb: PUBLIC_FORM_MAX_BYTES / 1024 } } as Refusal }, { status: read.status });
  const { form } = read;
  const email = String(form.get('email') ?? '');
  const password = String(form.get('password') ?? '');
  const next = safeNext(String(form.get('next') ?? '/'));
  if (!email || !password) return data({ error: { code: 'login.missing' } as Refusal }, { status: 400 });
  const r = await signIn(request, email, password);
  if (!r.ok) return data({ error: { code: r.code, values: r.values } as Refusal }, { status: r.status });
  // A new document: the sign-in page spoke the browser's language, what follows speaks the
  // operator's, and a page loaded afresh is rendered in it by the server (the browser's copy of
  // the catalogues did not follow a language change made by a client-side navigation here).
  // A second factor still to give (or to set up) comes first; `next` waits its turn.
  if (r.stage !== 'full')
    throw redirectDocument(`${r.stage === 'mfa' ? '/auth/mfa' : '/auth/mfa/enrol'}?next=${encodeURIComponent(next)}`, {
      headers: r.headers,
    });
  throw redirectDocument(next, { headers: r.headers });
}

export default function Login() {
  const { t } = useTranslation('auth');
  const { sso, ssoError } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const [params] = useSearchParams();
  const busy = useNavigation().state === 'submitting';
  const next = safeNextClient(params.get('next'));
  const passwordForm = (
    <Form method="post" className="card">
      <input type="hidden" name="next" value={next} />
      <label htmlFor="email">{t('login.email')}</label>
      <input id="email" name="email" type="email" autoComplete="username" required autoFocus />
      <label htmlFor="password">{t('login.password')}</label>
      <input id="password" name="password" type="password" autoComplete="current-password" required />
      <p>
        <button type="submit" disabled={busy}>
          {busy ? t('login.submitting') : t('login.submit')}
        </button>
      </p>
    </Form>
  );
  return (
    <main className="page narrow">
      <h1>{t('login.heading')}</h1>
      <FlashToast />
      {ssoError ? (
        <div className="toast error" role="alert">
          {t(`sso.errors.${ssoError}`)}
        </div>
      ) : null}
      {actionData?.error ? (
        <div className="toast error" role="alert">
          {t(actionData.error.code, actionData.error.values ?? {})}
        </div>
      ) : null}
      {sso.enabled ? (
        <p className="card">
          {/* A full page load: the provider's sign-in page is another site. */}
          <a className="button" href={`/auth/oidc?next=${encodeURIComponent(next)}`} data-testid="sso-button">
            {sso.displayName ? t('sso.button', { name: sso.displayName }) : t('sso.button_generic')}
          </a>
        </p>
      ) : null}
      {sso.enabled && sso.ssoOnly ? (
        <details>
          <summary>{t('sso.break_glass')}</summary>
          {passwordForm}
        </details>
      ) : (
        <>
          {sso.enabled ? <h2>{t('sso.or_password')}</h2> : null}
          {passwordForm}
        </>
      )}
      <p className="muted">{t('login.help')}</p>
    </main>
  );
}

function safeNextClient(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}
