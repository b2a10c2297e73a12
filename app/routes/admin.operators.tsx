import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, useActionData, useLoaderData } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput, useRootData } from '~/components/csrf';
import { useSay } from '~/components/message';
import { Toast } from '~/components/toast';
import { TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { manageOperator, operatorsData } from '~/operators.server';
import { identityAction, identityOverview } from '~/mfa.server';
import { OperatorIdentity } from '~/components/operator-identity';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'operators:page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'admin');
  return { ...(await operatorsData()), identity: await identityOverview() };
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  // Second factors and sessions (reset-factors, sign-out); every other intent manages the operator.
  const identity = await identityAction(request, who, who.form);
  if (identity) return data(identity, { status: identity.tone === 'ok' ? 200 : 400 });
  const r = await manageOperator(request, who, who.form);
  return data(r, { status: r.tone === 'ok' ? 200 : 400 });
}

const ROLES = ['viewer', 'compliance', 'admin'] as const;

export default function Operators() {
  const { t } = useTranslation('operators');
  const say = useSay();
  const { operators, identity } = useLoaderData<typeof loader>();
  const r = useActionData<typeof action>();
  const me = useRootData().operator;
  const fieldError = (k: 'name' | 'email' | 'password') => (r?.errors?.[k] ? <p className="error">{say(r.errors[k])}</p> : null);
  return (
    <main className="page">
      <h1>{t('heading')}</h1>
      {r ? <Toast tone={r.tone} text={say(r)} /> : null}
      <table>
        <thead>
          <tr>
            <th>{t('columns.operator')}</th>
            <th>{t('columns.role')}</th>
            <th>{t('columns.status')}</th>
            <th>{t('columns.last_sign_in')}</th>
            <th>{t('identity.column')}</th>
            <th>{t('columns.reset_password')}</th>
          </tr>
        </thead>
        <tbody>
          {operators.map((o) => (
            <tr key={o.id}>
              <td>
                {o.name}
                <div className="muted">{o.email}</div>
              </td>
              <td>
                <Form method="post" className="inline">
                  <CsrfInput />
                  <input type="hidden" name="intent" value="role" />
                  <input type="hidden" name="id" value={o.id} />
                  <select name="role" defaultValue={o.role} aria-label={t('role_of', { email: o.email })} disabled={o.id === me?.id}>
                    {ROLES.map((role) => (
                      <option key={role} value={role}>
                        {t(`common:roles.${role}`)}
                      </option>
                    ))}
                  </select>{' '}
                  {o.id === me?.id ? null : (
                    <button type="submit" className="secondary small">
                      {t('save')}
                    </button>
                  )}
                </Form>
              </td>
              <td>
                {o.disabled ? <span className="error">{t('disabled')}</span> : t('active')}{' '}
                {o.id === me?.id ? null : (
                  <Form method="post" className="inline">
                    <CsrfInput />
                    <input type="hidden" name="intent" value={o.disabled ? 'enable' : 'disable'} />
                    <input type="hidden" name="id" value={o.id} />
                    <button type="submit" className="secondary small">
                      {o.disabled ? t('enable') : t('disable')}
                    </button>
                  </Form>
                )}
              </td>
              <td>{o.lastLoginAt ? <TimeAgo iso={o.lastLoginAt} /> : <span className="muted">{t('never')}</span>}</td>
              <td>
                <OperatorIdentity operator={o} overview={identity} self={o.id === me?.id} />
              </td>
              <td>
                <Form method="post" className="inline">
                  <CsrfInput />
                  <input type="hidden" name="intent" value="reset-password" />
                  <input type="hidden" name="id" value={o.id} />
                  <input
                    name="password"
                    type="password"
                    minLength={10}
                    required
                    placeholder={t('new_password_placeholder')}
                    aria-label={t('new_password_for', { email: o.email })}
                    autoComplete="new-password"
                  />{' '}
                  <button type="submit" className="secondary small">
                    {t('reset')}
                  </button>
                </Form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <section className="card" aria-labelledby="add-h">
        <h2 id="add-h">{t('add_heading')}</h2>
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="create" />
          <label htmlFor="op-name">{t('name')}</label>
          <input id="op-name" name="name" required />
          {fieldError('name')}
          <label htmlFor="op-email">{t('email')}</label>
          <input id="op-email" name="email" type="email" required />
          {fieldError('email')}
          <label htmlFor="op-role">{t('role')}</label>
          <select id="op-role" name="role" defaultValue="compliance">
            {ROLES.map((role) => (
              <option key={role} value={role}>
                {t(`role_options.${role}`)}
              </option>
            ))}
          </select>
          <label htmlFor="op-password">{t('initial_password')}</label>
          <input id="op-password" name="password" type="password" minLength={10} required autoComplete="new-password" />
          {fieldError('password')}
          <p>
            <button type="submit">{t('add')}</button>
          </p>
        </Form>
      </section>
    </main>
  );
}
