import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { saveWebhookSettings, settingsData } from '~/settings.server';

export const meta: MetaFunction = () => [{ title: 'Webhook settings · KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'admin');
  return settingsData(who);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  return saveWebhookSettings(request, who, who.form);
}

export default function AdminSettings() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = navigation.state === 'submitting';
  const errors = result && 'errors' in result ? (result.errors ?? {}) : {};
  const values = result && 'values' in result ? (result.values ?? {}) : {};

  return (
    <main className="page">
      <h1>Webhook settings</h1>
      <OpsNav />
      <ActionToast result={result} />

      <section className="card">
        <h2>Where Capa sends webhooks</h2>
        <p className="muted">
          Capa keeps one URL per partner and has no way to read it back, so this shows what KYC Desk last registered (
          {d.usingSandbox ? 'local Capa sandbox' : d.capaBaseUrl}).
        </p>
        {d.current ? (
          <dl className="facts">
            <dt>Registered URL</dt>
            <dd data-testid="current-url">{d.current.url ?? <strong className="error">none — webhooks switched off</strong>}</dd>
            <dt>Set</dt>
            <dd>
              <Time iso={d.current.setAt} /> by {d.current.setBy ?? 'unknown'}
            </dd>
          </dl>
        ) : (
          <p data-testid="current-url">Not set from KYC Desk yet (it may have been set at Capa by other means).</p>
        )}
        <Form method="post" noValidate>
          <CsrfInput />
          <input type="hidden" name="intent" value="set-url" />
          <label htmlFor="url">Webhook URL</label>
          <input
            id="url"
            name="url"
            type="url"
            required
            defaultValue={values.url ?? d.current?.url ?? d.suggestedUrl}
            aria-invalid={Boolean(errors.url)}
            aria-describedby={errors.url ? 'url-error' : undefined}
            size={60}
          />
          {errors.url ? (
            <p id="url-error" className="error">
              {errors.url}
            </p>
          ) : (
            <p className="muted">
              Ours is {d.suggestedUrl}
              {d.production ? ' (https is required in production)' : ''}.
            </p>
          )}
          <button type="submit" disabled={busy}>
            Register at Capa
          </button>
        </Form>
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="disable" />
          <label>
            <input type="checkbox" name="confirm" value="yes" /> Stop all webhooks (events are recorded at Capa as NOT_SENT)
          </label>
          {errors.confirm ? <p className="error">{errors.confirm}</p> : null}
          <button type="submit" className="secondary" disabled={busy}>
            Switch webhooks off
          </button>
        </Form>
      </section>

      <section className="card">
        <h2>Accepted signing secrets</h2>
        <p className="muted">
          From CAPA_WEBHOOK_SECRET (comma-separated for rotation; change it in the server configuration). A delivery is accepted when any of
          these verifies its signature.
        </p>
        <table>
          <thead>
            <tr>
              <th>#</th>
              <th>Secret</th>
              <th>Fingerprint (sha256)</th>
              <th>Verified deliveries, 30 days</th>
              <th>Last verified</th>
            </tr>
          </thead>
          <tbody>
            {d.secrets.map((s) => (
              <tr key={s.index}>
                <td>{s.index + 1}</td>
                <td>
                  <code>{s.masked}</code> <span className="muted">({s.length} characters)</span>
                </td>
                <td>
                  <code>{s.fingerprint}</code>
                </td>
                <td>{s.verified30d}</td>
                <td>
                  <Time iso={s.lastVerifiedAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </main>
  );
}
