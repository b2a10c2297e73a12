import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireSession, requireSessionMutation, safeNext } from '~/auth.server';
import { Toast } from '~/components/toast';
import { usePasskey } from '~/components/passkey';
import { pageTitle } from '~/i18n';
import { confirmTotp, registerPasskey, totpEnrolment, type MfaOutcome } from '~/mfa.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'auth:enrol.page_title') }];

/**
 * Setting up a second factor: during sign-in when the role requires one (the session waits at
 * the `enrol` stage), or from /account. An authenticator app (QR code, or the secret typed in)
 * or a passkey; the first factor ever also brings ten recovery codes, shown once.
 */
export async function loader({ request }: LoaderFunctionArgs) {
  const next = safeNext(new URL(request.url).searchParams.get('next'));
  const live = await requireSession(request, ['enrol', 'full', 'mfa']);
  if (live.session.stage === 'mfa') throw redirect(`/auth/mfa?next=${encodeURIComponent(next)}`);
  return {
    next,
    csrf: live.session.csrfToken,
    required: live.session.stage === 'enrol',
    email: live.operator.email,
    totp: await totpEnrolment(live.operator),
  };
}

export async function action({ request }: ActionFunctionArgs) {
  const { live, form } = await requireSessionMutation(request, ['enrol', 'full']);
  const next = safeNext(String(form.get('next') ?? '/'));
  const intent = form.get('intent');
  if (intent === 'totp-restart') {
    await totpEnrolment(live.operator, true);
    return data({ code: 'enrol.totp_restarted', tone: 'info' as const, recoveryCodes: null, next });
  }
  let r: MfaOutcome;
  if (intent === 'totp') r = await confirmTotp(request, live, String(form.get('code') ?? ''));
  else if (intent === 'passkey')
    r = await registerPasskey(request, live, String(form.get('response') ?? ''), String(form.get('name') ?? ''));
  else return data({ code: 'mfa.unknown_intent', tone: 'error' as const, recoveryCodes: null, next }, { status: 400 });
  if (!r.ok)
    return data({ code: r.code, tone: 'error' as const, recoveryCodes: null, next }, { status: r.code === 'mfa.throttled' ? 429 : 400 });
  const headers = r.headers ?? new Headers();
  // New recovery codes are shown once, on this page, before going on.
  if (r.recoveryCodes) return data({ code: 'enrol.done', tone: 'ok' as const, recoveryCodes: r.recoveryCodes, next }, { headers });
  throw redirect(next, { headers });
}

export default function Enrol() {
  const { t } = useTranslation('auth');
  const d = useLoaderData<typeof loader>();
  const r = useActionData<typeof action>();
  const busy = useNavigation().state === 'submitting';
  const passkey = usePasskey(d.csrf);

  if (r?.recoveryCodes) {
    return (
      <main className="page narrow">
        <h1>{t('enrol.codes_heading')}</h1>
        <Toast tone="ok" text={t('enrol.done')} />
        <p>{t('enrol.codes_intro')}</p>
        <ol className="card recovery-codes" data-testid="recovery-codes">
          {r.recoveryCodes.map((c) => (
            <li key={c}>
              <code>{c}</code>
            </li>
          ))}
        </ol>
        <p>
          <Link className="button" to={r.next}>
            {t('enrol.codes_continue')}
          </Link>
        </p>
      </main>
    );
  }

  return (
    <main className="page narrow">
      <h1>{t('enrol.heading')}</h1>
      <p>{d.required ? t('enrol.required_intro') : t('enrol.intro')}</p>
      {r ? <Toast tone={r.tone} text={t(r.code)} /> : null}
      {passkey.failed ? <Toast tone="error" text={t('mfa.passkey_cancelled')} /> : null}
      {d.totp ? (
        <section className="card" aria-labelledby="totp-h">
          <h2 id="totp-h">{t('enrol.totp_heading')}</h2>
          <p>{t('enrol.totp_scan')}</p>
          <img src={d.totp.qr} width={200} height={200} alt={t('enrol.qr_alt')} />
          <p>{t('enrol.totp_manual')}</p>
          <p>
            <code data-testid="totp-secret">{d.totp.secret.match(/.{1,4}/g)!.join(' ')}</code>
          </p>
          <Form method="post">
            <input type="hidden" name="csrf" value={d.csrf} />
            <input type="hidden" name="next" value={d.next} />
            <input type="hidden" name="intent" value="totp" />
            <label htmlFor="code">{t('enrol.totp_code')}</label>
            <input id="code" name="code" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9 ]{6,7}" maxLength={7} required />
            <p>
              <button type="submit" disabled={busy}>
                {t('enrol.totp_confirm')}
              </button>
            </p>
          </Form>
          <Form method="post">
            <input type="hidden" name="csrf" value={d.csrf} />
            <input type="hidden" name="next" value={d.next} />
            <input type="hidden" name="intent" value="totp-restart" />
            <button type="submit" className="secondary small" disabled={busy}>
              {t('enrol.totp_restart')}
            </button>
          </Form>
        </section>
      ) : (
        <p className="muted">{t('enrol.totp_already')}</p>
      )}
      <section className="card" aria-labelledby="passkey-h">
        <h2 id="passkey-h">{t('enrol.passkey_heading')}</h2>
        <p>{t('enrol.passkey_intro')}</p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const name = String(new FormData(e.currentTarget).get('name') ?? '');
            void passkey.register({ intent: 'passkey', next: d.next, name });
          }}
        >
          <label htmlFor="passkey-name">{t('enrol.passkey_name')}</label>
          <input id="passkey-name" name="name" maxLength={60} placeholder={t('enrol.passkey_name_placeholder')} />
          <p>
            <button type="submit" disabled={passkey.busy || busy}>
              {t('enrol.passkey_button')}
            </button>
          </p>
        </form>
      </section>
      {d.required ? null : (
        <p>
          <Link to={d.next}>{t('enrol.back')}</Link>
        </p>
      )}
    </main>
  );
}
