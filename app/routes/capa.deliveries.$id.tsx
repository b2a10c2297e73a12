import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useMemo } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { capaDeliveryDetail, NOTIFICATION_STATUS_WORDS, retryCapaDelivery } from '~/capa-log.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = () => [{ title: 'Capa delivery · KYC Desk' }];

export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  const id = params.id ?? '';
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(id)) throw new Response('That is not a Capa delivery id.', { status: 404 });
  return capaDeliveryDetail(who, id);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  return retryCapaDelivery(request, who, who.form);
}

export default function CapaDelivery() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const n = d.found ? d.notification : null;
  // A new request id each time the row changes: the id is what makes a double click one action.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const requestId = useMemo(() => newRequestId(), [n?.manualRetryCount, n?.status]);

  return (
    <main className="page wide">
      <p>
        <Link to="/capa/deliveries">← Capa delivery log</Link>
      </p>
      <h1>Capa delivery {n ? <span className="muted">{n.payload?.event ?? ''}</span> : null}</h1>
      <OpsNav />
      <ActionToast result={result} />
      {!d.found || !n ? (
        <div className="toast error" role="alert">
          {d.error}
        </div>
      ) : (
        <>
          <section className="card">
            <dl className="facts">
              <dt>Id</dt>
              <dd>
                <code>{n.id}</code>
              </dd>
              <dt>Status</dt>
              <dd>
                <span className={`badge ${n.status}`}>{n.status}</span>{' '}
                <span className="muted">{NOTIFICATION_STATUS_WORDS[n.status] ?? ''}</span>
              </dd>
              <dt>Automatic retries</dt>
              <dd>{n.retryAttempts}</dd>
              <dt>Manual retries</dt>
              <dd>
                {n.manualRetryCount} of {d.limits.perNotification}
                {n.lastManualRetryAt ? (
                  <span className="muted">
                    {' '}
                    · last <Time iso={n.lastManualRetryAt} />
                  </span>
                ) : null}
              </dd>
              <dt>Created / updated</dt>
              <dd>
                <Time iso={n.createdAt} /> / <Time iso={n.updatedAt} />
              </dd>
              <dt>Customer</dt>
              <dd>
                {d.customer ? (
                  <Link to={`/users/${d.customer.id}`}>{d.customer.externalUserId}</Link>
                ) : (
                  <span className="muted">{n.payload?.externalUserId ?? '—'}</span>
                )}
              </dd>
            </dl>
            {d.canRetry ? (
              <Form method="post">
                <CsrfInput />
                <input type="hidden" name="intent" value="retry" />
                <input type="hidden" name="id" value={n.id} />
                <input type="hidden" name="requestId" value={requestId} />
                <button type="submit" disabled={navigation.state === 'submitting' || Boolean(d.blocked)}>
                  Ask Capa to send it again
                </button>{' '}
                {d.blocked ? (
                  <span className="muted">{d.blocked}</span>
                ) : (
                  <span className="muted">
                    Uses one of the {d.limits.perNotification} manual retries and one of the {d.limits.perMinute} per minute.
                  </span>
                )}
              </Form>
            ) : null}
          </section>
          <section className="card">
            <h2>Payload</h2>
            <pre className="raw">{JSON.stringify(n.payload, null, 2)}</pre>
            <h3>What our endpoint answered on the last failure</h3>
            <pre className="raw">
              {n.latestErrorPayload === null || n.latestErrorPayload === undefined ? '—' : JSON.stringify(n.latestErrorPayload, null, 2)}
            </pre>
          </section>
          <section className="card">
            <h2>In our inbox</h2>
            {d.ours.length === 0 ? (
              <p className="muted">No delivery of this event for this customer reached our inbox.</p>
            ) : (
              <ul>
                {d.ours.map((o) => (
                  <li key={o.id}>
                    <Link to={`/webhooks/${o.id}`}>#{o.id}</Link> <Time iso={o.receivedAt} /> — {o.signatureVerdict}, {o.status}
                    {o.duplicateOf !== null ? ` (repeat of #${o.duplicateOf})` : ''}
                    {o.stateFrom && o.stateTo && o.stateFrom !== o.stateTo
                      ? ` — ${o.stateFrom} → ${o.stateTo}`
                      : o.effect
                        ? ` — ${o.effect.replace(/_/g, ' ')}`
                        : ''}
                  </li>
                ))}
              </ul>
            )}
          </section>
        </>
      )}
    </main>
  );
}
