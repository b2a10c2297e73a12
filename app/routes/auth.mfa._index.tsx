import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { currentSession, requireSession, requireSessionMutation, safeNext } from '~/auth.server';
import { Toast } from '~/components/toast';
import { usePasskey } from '~/components/passkey';
import { pageTitle } from '~/i18n';
import { challengeOptions, verifyPasskeySignIn, verifyRecoverySignIn, verifyTotpSignIn, type MfaOutcome } from '~/mfa.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'auth:mfa.page_title') }];

/** The second step of a password sign-in: a code from the app, a passkey, or a recovery code. */
export async function loader({ request }: LoaderFunctionArgs) {
  const next = safeNext(new URL(request.url).searchParams.get('next'));
  if (await currentSession(request)) throw redirect(next);
  const live = await requireSession(request, ['mfa', 'enrol']);
  if (live.session.stage === 'enrol') throw redirect(`/auth/mfa/enrol?next=${encodeURIComponent(next)}`);
  const factors = await challengeOptions(live);
  return { next, csrf: live.session.csrfToken, email: live.operator.email, totp: factors.totp, passkeys: factors.passkeys > 0 };
}

export async function action({ request }: ActionFunctionArgs) {
  // Already signed in (a second tab finished first): nothing left to verify.
  if (await currentSession(request)) throw redirect('/');
  const { live, form } = await requireSessionMutation(request, ['mfa']);
  const next = safeNext(String(form.get('next') ?? '/'));
  const intent = form.get('intent');
  let r: MfaOutcome;
  if (intent === 'totp') r = await verifyTotpSignIn(request, live, String(form.get('code') ?? ''));
  else if (intent === 'recovery') r = await verifyRecoverySignIn(request, live, String(form.get('code') ?? ''));
  else if (intent === 'passkey') r = await verifyPasskeySignIn(request, live, String(form.get('response') ?? ''));
  else return data({ code: 'mfa.unknown_intent', values: {} }, { status: 400 });
  if (r.ok) throw redirect(next, { headers: r.headers });
  return data({ code: r.code, values: r.values ?? {} }, { status: r.code === 'mfa.throttled' ? 429 : 400 });
}

export default function SecondFactor() {
  const { t } = useTranslation('auth');
  const d = useLoaderData<typeof loader>();
  const r = useActionData<typeof action>();
  const busy = useNavigation().state === 'submitting';
  const passkey = usePasskey(d.csrf);
  return (
    <main className="page narrow">
      <h1>{t('mfa.heading')}</h1>
      <p className="muted">{t('mfa.intro', { email: d.email })}</p>
      {r ? <Toast tone="error" text={t(r.code, r.values)} /> : null}
      {passkey.failed ? <Toast tone="error" text={t('mfa.passkey_cancelled')} /> : null}
      {d.totp ? (
        <Form method="post" className="card">
          <input type="hidden" name="csrf" value={d.csrf} />
          <input type="hidden" name="next" value={d.next} />
          <input type="hidden" name="intent" value="totp" />
          <label htmlFor="code">{t('mfa.totp_label')}</label>
          <input
            id="code"
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9 ]{6,7}"
            maxLength={7}
            required
            autoFocus
          />
          <p>
            <button type="submit" disabled={busy}>
              {t('mfa.verify')}
            </button>
          </p>
        </Form>
      ) : null}
      {d.passkeys ? (
        <section className="card">
          <p>{t('mfa.passkey_intro')}</p>
          <button type="button" disabled={passkey.busy || busy} onClick={() => passkey.signIn({ intent: 'passkey', next: d.next })}>
            {t('mfa.passkey_button')}
          </button>
        </section>
      ) : null}
      <details className="card">
        <summary>{t('mfa.recovery_summary')}</summary>
        <Form method="post">
          <input type="hidden" name="csrf" value={d.csrf} />
          <input type="hidden" name="next" value={d.next} />
          <input type="hidden" name="intent" value="recovery" />
          <label htmlFor="recovery">{t('mfa.recovery_label')}</label>
          <input id="recovery" name="code" autoComplete="off" spellCheck={false} required />
          <p>
            <button type="submit" className="secondary" disabled={busy}>
              {t('mfa.recovery_submit')}
            </button>
          </p>
        </Form>
      </details>
      <p className="muted">
        {t('mfa.lost_everything')} <Link to="/login">{t('mfa.start_over')}</Link>
      </p>
    </main>
  );
}
