import { Form, Link, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import type { SecurityData } from '../mfa.server';
import { CsrfInput } from './csrf';
import { useFormat } from './format';
import { Toast } from './toast';
import { TimeAgo } from './ui';

/**
 * The security part of /account: second factors (authenticator app, passkeys), recovery codes,
 * and the operator's signed-in sessions with "sign out everywhere". Data from
 * app/mfa.server.ts (securityData); the forms post `security-*` intents to the page's action.
 */

/** What the sections show: app/mfa.server.ts securityData's answer. */
export type SecurityView = SecurityData;

export interface SecurityResult {
  security: true;
  tone: 'ok' | 'error';
  code: string;
  recoveryCodes?: string[];
}

function IntentButton({
  intent,
  label,
  extra,
  small = true,
}: {
  intent: string;
  label: string;
  extra?: Record<string, string>;
  small?: boolean;
}) {
  const busy = useNavigation().state === 'submitting';
  return (
    <Form method="post" className="inline">
      <CsrfInput />
      <input type="hidden" name="intent" value={intent} />
      {Object.entries(extra ?? {}).map(([k, v]) => (
        <input key={k} type="hidden" name={k} value={v} />
      ))}
      <button type="submit" className={small ? 'secondary small' : 'secondary'} disabled={busy}>
        {label}
      </button>
    </Form>
  );
}

export function SecuritySections({ data, result }: { data: SecurityView; result: SecurityResult | null }) {
  const { t } = useTranslation('account');
  const fmt = useFormat();
  const anyFactor = data.factors.totp || data.factors.passkeys > 0;
  return (
    <>
      {result ? <Toast tone={result.tone} text={t(result.code)} /> : null}
      <section className="card" aria-labelledby="factors-h" data-testid="security-factors">
        <h2 id="factors-h">{t('security.factors_heading')}</h2>
        {data.required && !anyFactor ? <p className="error">{t('security.required')}</p> : null}
        <h3>{t('security.totp')}</h3>
        {data.factors.totp ? (
          <div>
            {t('security.totp_on')} <IntentButton intent="security-remove-totp" label={t('security.remove')} />
          </div>
        ) : (
          <p>
            {data.totpPending ? t('security.totp_pending') : t('security.totp_off')}{' '}
            <Link to="/auth/mfa/enrol?next=/account">{t('security.set_up')}</Link>
          </p>
        )}
        <h3>{t('security.passkeys')}</h3>
        {data.passkeys.length === 0 ? <p className="muted">{t('security.passkeys_none')}</p> : null}
        <ul>
          {data.passkeys.map((k) => (
            <li key={k.id}>
              <strong>{k.name || t('security.passkey_unnamed')}</strong>{' '}
              <span className="muted">
                {t('security.passkey_added', { date: fmt.date(k.createdAt) })} ·{' '}
                {k.lastUsedAt ? t('security.passkey_last_used', { date: fmt.dateTime(k.lastUsedAt) }) : t('security.passkey_never_used')}
              </span>{' '}
              <IntentButton intent="security-remove-passkey" label={t('security.remove')} extra={{ id: k.id }} />
            </li>
          ))}
        </ul>
        <p>
          <Link to="/auth/mfa/enrol?next=/account">{t('security.add_passkey')}</Link>
        </p>
      </section>

      <section className="card" aria-labelledby="recovery-h">
        <h2 id="recovery-h">{t('security.recovery_heading')}</h2>
        {result?.recoveryCodes ? (
          <>
            <p>{t('security.recovery_new_intro')}</p>
            <ol className="recovery-codes" data-testid="recovery-codes">
              {result.recoveryCodes.map((c) => (
                <li key={c}>
                  <code>{c}</code>
                </li>
              ))}
            </ol>
          </>
        ) : (
          <p>{anyFactor ? t('security.recovery_left', { count: data.factors.recoveryCodesLeft }) : t('security.recovery_none')}</p>
        )}
        {anyFactor ? <IntentButton intent="security-recovery-codes" label={t('security.recovery_generate')} small={false} /> : null}
      </section>

      <section className="card" aria-labelledby="sessions-h">
        <h2 id="sessions-h">{t('security.sessions_heading')}</h2>
        <p className="muted">{t('security.sessions_intro')}</p>
        <table data-testid="sessions">
          <thead>
            <tr>
              <th>{t('security.session_device')}</th>
              <th>{t('security.session_address')}</th>
              <th>{t('security.session_method')}</th>
              <th>{t('security.session_started')}</th>
              <th>{t('security.session_last_seen')}</th>
            </tr>
          </thead>
          <tbody>
            {data.sessions.map((s) => (
              <tr key={s.key}>
                <td>
                  {s.device ?? t('security.unknown_device')}
                  {s.current ? <span className="badge">{t('security.this_device')}</span> : null}
                </td>
                <td>{s.ip ?? '—'}</td>
                <td>{s.method ? t(`security.methods.${s.method.replace(/\+/g, '_')}`, { defaultValue: s.method }) : '—'}</td>
                <td>{fmt.dateTime(s.createdAt)}</td>
                <td>
                  <TimeAgo iso={s.lastSeenAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <div>
          <IntentButton intent="security-sign-out-everywhere" label={t('security.sign_out_everywhere')} small={false} />
        </div>
      </section>
    </>
  );
}
