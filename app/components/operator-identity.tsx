import { Form } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { CsrfInput } from './csrf';

/**
 * One operator's sign-in on /admin/operators: second factors, single sign-on link, signed-in
 * sessions, and the two things an admin does about them — reset the factors (a lost phone) and
 * end every session (a stolen laptop). Data from app/mfa.server.ts (identityOverview); the forms
 * post `reset-factors` and `sign-out` to the page's action.
 */

export interface IdentityOverviewView {
  factors: Record<string, { totp: boolean; passkeys: number; recoveryCodesLeft: number }>;
  sessions: Record<string, number>;
  sso: string[];
  mfaRequired: string[];
}

function AdminButton({ intent, id, label, confirm }: { intent: string; id: string; label: string; confirm: string }) {
  return (
    <Form
      method="post"
      className="inline"
      onSubmit={(e) => {
        if (!window.confirm(confirm)) e.preventDefault();
      }}
    >
      <CsrfInput />
      <input type="hidden" name="intent" value={intent} />
      <input type="hidden" name="id" value={id} />
      <button type="submit" className="secondary small">
        {label}
      </button>
    </Form>
  );
}

export function OperatorIdentity({
  operator,
  overview,
  self,
}: {
  operator: { id: string; email: string; role: string };
  overview: IdentityOverviewView;
  self: boolean;
}) {
  const { t } = useTranslation('operators');
  const f = overview.factors[operator.id] ?? { totp: false, passkeys: 0, recoveryCodesLeft: 0 };
  const sessions = overview.sessions[operator.id] ?? 0;
  const parts = [
    f.totp ? t('identity.totp') : null,
    f.passkeys ? t('identity.passkeys', { count: f.passkeys }) : null,
    f.totp || f.passkeys ? t('identity.recovery_left', { count: f.recoveryCodesLeft }) : null,
  ].filter(Boolean);
  return (
    <div data-testid={`identity-${operator.email}`}>
      <div>
        {parts.length ? (
          parts.join(' · ')
        ) : (
          <span className={overview.mfaRequired.includes(operator.role) ? 'error' : 'muted'}>{t('identity.no_factor')}</span>
        )}
        {overview.sso.includes(operator.id) ? <span className="badge">{t('identity.sso')}</span> : null}
      </div>
      <div className="muted">{t('identity.sessions', { count: sessions })}</div>
      {self ? null : (
        <div>
          {parts.length ? (
            <AdminButton
              intent="reset-factors"
              id={operator.id}
              label={t('identity.reset')}
              confirm={t('identity.reset_confirm', { email: operator.email })}
            />
          ) : null}{' '}
          {sessions ? (
            <AdminButton
              intent="sign-out"
              id={operator.id}
              label={t('identity.sign_out')}
              confirm={t('identity.sign_out_confirm', { email: operator.email })}
            />
          ) : null}
        </div>
      )}
    </div>
  );
}
