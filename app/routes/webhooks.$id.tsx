import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data as withStatus } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useMemo } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { inboxDetailData, reprocessDelivery } from '~/inbox.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = ({ params }) => [{ title: `Webhook #${params.id} · KYC Desk` }];

function parseId(raw: string | undefined): number | null {
  return raw && /^\d{1,12}$/.test(raw) && Number(raw) > 0 ? Number(raw) : null;
}

export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  const id = parseId(params.id);
  const d = id === null ? null : await inboxDetailData(who, id);
  if (!d) throw new Response(`There is no webhook delivery #${params.id}.`, { status: 404 });
  return d;
}

export async function action({ request, params }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  const id = parseId(params.id);
  if (id === null) return withStatus({ tone: 'error' as const, message: `There is no webhook delivery #${params.id}.` }, { status: 404 });
  return reprocessDelivery(request, who, id, who.form);
}

export default function WebhookDetail() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  // A new request id each time the row changes: the id is what makes a double click one action.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const requestId = useMemo(() => newRequestId(), [d.delivery.status, d.delivery.attempts]);
  const w = d.delivery;
  const busy = navigation.state === 'submitting';

  return (
    <main className="page wide">
      <p>
        <Link to="/webhooks">← Webhook inbox</Link>
      </p>
      <h1>
        Webhook #{w.id}{' '}
        {w.eventName ? (
          <span className="muted">
            {w.eventType} · {w.eventName}
          </span>
        ) : null}
      </h1>
      <OpsNav />
      <ActionToast result={result} />

      <section className="card">
        <dl className="facts">
          <dt>Received</dt>
          <dd>
            <Time iso={w.receivedAt} />
          </dd>
          <dt>Signature</dt>
          <dd className={w.signatureVerdict === 'valid' ? '' : 'error'}>
            {w.signatureVerdict}
            {w.secretIndex !== null ? <span className="muted"> (secret #{w.secretIndex + 1})</span> : null}
          </dd>
          <dt>Status</dt>
          <dd>
            <span className={`badge ${w.status}`}>{w.status}</span>{' '}
            {w.attempts > 0 ? (
              <span className="muted">
                after {w.attempts} attempt{w.attempts === 1 ? '' : 's'}
              </span>
            ) : null}
          </dd>
          <dt>New / repeat</dt>
          <dd>
            {d.context.original ? (
              <>
                repeat of <Link to={`/webhooks/${d.context.original.id}`}>#{d.context.original.id}</Link>
              </>
            ) : (
              'new'
            )}
            {d.context.duplicates.length ? (
              <>
                {' '}
                · repeated by{' '}
                {d.context.duplicates.map((x) => (
                  <Link key={x.id} to={`/webhooks/${x.id}`}>
                    #{x.id}{' '}
                  </Link>
                ))}
              </>
            ) : null}
          </dd>
          <dt>Customer</dt>
          <dd>
            {d.context.customer ? (
              <Link to={`/users/${d.context.customer.id}`}>{d.context.customer.externalUserId}</Link>
            ) : w.externalUserId ? (
              <span>
                {w.externalUserId} <span className="muted">(not a KYC Desk customer)</span>
              </span>
            ) : (
              <span className="muted">—</span>
            )}
          </dd>
          <dt>Effect</dt>
          <dd>
            {w.stateFrom && w.stateTo && w.stateFrom !== w.stateTo ? (
              <strong>
                {w.stateFrom} → {w.stateTo}
              </strong>
            ) : (
              (w.effect ?? '—').replace(/_/g, ' ')
            )}
            {w.processedAt ? (
              <span className="muted">
                {' '}
                · settled <Time iso={w.processedAt} />
              </span>
            ) : null}
          </dd>
          <dt>Processing error</dt>
          <dd className={w.error ? 'error' : 'muted'}>{w.error ?? '—'}</dd>
        </dl>
      </section>

      <section className="card">
        <h2>Re-process</h2>
        {!d.canReprocess ? (
          <p className="muted">Only an admin can re-process a delivery.</p>
        ) : d.reprocess.ok ? (
          <Form method="post">
            <CsrfInput />
            <input type="hidden" name="intent" value="reprocess" />
            <input type="hidden" name="requestId" value={requestId} />
            <p className="muted">
              Runs this delivery through the worker again, exactly like a new arrival. Safe to repeat: an event that was already applied
              changes nothing.
            </p>
            <button type="submit" disabled={busy}>
              {busy ? 'Queuing…' : 'Re-process'}
            </button>
          </Form>
        ) : (
          <p>
            <button type="button" disabled>
              Re-process
            </button>{' '}
            <span className="muted">{d.reprocess.reason}</span>
          </p>
        )}
      </section>

      <section className="card">
        <h2>Raw body {d.body.masked ? <span className="muted">(personal data masked for your role)</span> : null}</h2>
        <pre className="raw">{d.body.text}</pre>
        <h3>Headers</h3>
        <pre className="raw">{JSON.stringify(d.headers, null, 2)}</pre>
      </section>

      <section className="card">
        <h2>What it caused</h2>
        {d.context.stateChanges.length === 0 ? (
          <p className="muted">No state change.</p>
        ) : (
          <ul>
            {d.context.stateChanges.map((s) => (
              <li key={s.id}>
                <Time iso={s.at} />: {s.fromState} → {s.toState}
              </li>
            ))}
          </ul>
        )}
        <h3>Worker runs</h3>
        {d.context.jobRuns.length === 0 ? (
          <p className="muted">None recorded.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Started</th>
                <th>Attempt</th>
                <th>Result</th>
                <th>Error</th>
              </tr>
            </thead>
            <tbody>
              {d.context.jobRuns.map((j) => (
                <tr key={j.id}>
                  <td>
                    <Time iso={j.startedAt} />
                  </td>
                  <td>{j.attempt}</td>
                  <td>{j.status}</td>
                  <td className={j.error ? 'error' : 'muted'}>{j.error ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>Operator actions</h3>
        {d.audit.length === 0 ? (
          <p className="muted">None.</p>
        ) : (
          <ul>
            {d.audit.map((a) => (
              <li key={a.id}>
                <Time iso={a.at} />: {a.actor} — {a.action} ({a.outcome})
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}
