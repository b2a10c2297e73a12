import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, useActionData, useLoaderData } from '@remix-run/react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput, useRootData } from '~/components/csrf';
import { Toast } from '~/components/toast';
import { TimeAgo } from '~/components/ui';
import { manageOperator, operatorsData } from '~/operators.server';

export const meta: MetaFunction = () => [{ title: 'Operators — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'admin');
  return operatorsData();
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  const r = await manageOperator(request, who, who.form);
  return data(r, { status: r.tone === 'ok' ? 200 : 400 });
}

export default function Operators() {
  const { operators } = useLoaderData<typeof loader>();
  const r = useActionData<typeof action>();
  const me = useRootData().operator;
  return (
    <main className="page">
      <h1>Operators</h1>
      {r ? <Toast tone={r.tone} text={r.text} /> : null}
      <table>
        <thead>
          <tr>
            <th>Operator</th>
            <th>Role</th>
            <th>Status</th>
            <th>Last sign-in</th>
            <th>Reset password</th>
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
                  <select name="role" defaultValue={o.role} aria-label={`Role of ${o.email}`} disabled={o.id === me?.id}>
                    <option value="viewer">viewer</option>
                    <option value="compliance">compliance</option>
                    <option value="admin">admin</option>
                  </select>{' '}
                  {o.id === me?.id ? null : (
                    <button type="submit" className="secondary small">
                      Save
                    </button>
                  )}
                </Form>
              </td>
              <td>
                {o.disabled ? <span className="error">disabled</span> : 'active'}{' '}
                {o.id === me?.id ? null : (
                  <Form method="post" className="inline">
                    <CsrfInput />
                    <input type="hidden" name="intent" value={o.disabled ? 'enable' : 'disable'} />
                    <input type="hidden" name="id" value={o.id} />
                    <button type="submit" className="secondary small">
                      {o.disabled ? 'Enable' : 'Disable'}
                    </button>
                  </Form>
                )}
              </td>
              <td>{o.lastLoginAt ? <TimeAgo iso={o.lastLoginAt} /> : <span className="muted">never</span>}</td>
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
                    placeholder="new password"
                    aria-label={`New password for ${o.email}`}
                    autoComplete="new-password"
                  />{' '}
                  <button type="submit" className="secondary small">
                    Reset
                  </button>
                </Form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <section className="card" aria-labelledby="add-h">
        <h2 id="add-h">Add an operator</h2>
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="create" />
          <label htmlFor="op-name">Name</label>
          <input id="op-name" name="name" required />
          {r?.errors?.name ? <p className="error">{r.errors.name}</p> : null}
          <label htmlFor="op-email">E-mail</label>
          <input id="op-email" name="email" type="email" required />
          {r?.errors?.email ? <p className="error">{r.errors.email}</p> : null}
          <label htmlFor="op-role">Role</label>
          <select id="op-role" name="role" defaultValue="compliance">
            <option value="viewer">viewer — read only, personal data masked</option>
            <option value="compliance">compliance — all case work</option>
            <option value="admin">admin — everything, manages operators</option>
          </select>
          <label htmlFor="op-password">Initial password (10+ characters)</label>
          <input id="op-password" name="password" type="password" minLength={10} required autoComplete="new-password" />
          {r?.errors?.password ? <p className="error">{r.errors.password}</p> : null}
          <p>
            <button type="submit">Add operator</button>
          </p>
        </Form>
      </section>
    </main>
  );
}
