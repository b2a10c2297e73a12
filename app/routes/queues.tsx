import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { queueAction, queuesData } from '~/queues.server';

export const meta: MetaFunction = () => [{ title: 'Queues · KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'admin');
  return queuesData(who);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  return queueAction(request, who, who.form);
}

const STATES = ['waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'paused', 'completed', 'failed'] as const;

export default function QueuesPage() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = navigation.state === 'submitting';

  return (
    <main className="page wide">
      <h1>Queues</h1>
      <OpsNav />
      <ActionToast result={result} />

      {d.redisError ? (
        <div className="toast error" role="alert">
          Redis (the job queue) is not answering: no job can be queued or run until it is back. Deliveries are still stored and will be
          queued by the relay. ({d.redisError})
        </div>
      ) : null}
      {d.noWorker.length ? (
        <div className="toast error" role="alert" data-testid="no-worker">
          No worker is connected for {d.noWorker.join(', ')}: jobs there wait and nothing is processed. Start the worker (npm run
          start:worker) or check its logs.
        </div>
      ) : null}

      {d.health ? (
        <section className="card">
          <h2>Jobs per queue</h2>
          <table>
            <thead>
              <tr>
                <th>Queue</th>
                <th>Workers</th>
                {STATES.map((s) => (
                  <th key={s}>{s}</th>
                ))}
                <th>Oldest waiting</th>
              </tr>
            </thead>
            <tbody>
              {d.health.map((q) => (
                <tr key={q.name} data-queue={q.name}>
                  <td>
                    <a href={`${d.boardUrl}/queue/${q.name}`}>{q.name}</a>
                    {q.paused ? <span className="error"> paused</span> : null}
                  </td>
                  <td className={q.needsWorker && q.workers === 0 ? 'error' : ''}>{q.workers}</td>
                  {STATES.map((s) => (
                    <td
                      key={s}
                      className={(s === 'failed' && q.counts[s] > 0) || (s === 'waiting' && q.backlog > d.backlogLimit) ? 'error' : ''}
                    >
                      {q.counts[s]}
                    </td>
                  ))}
                  <td>
                    <Time iso={q.oldestWaitingAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted">
            A backlog above {d.backlogLimit} waiting jobs is flagged. Job-level detail (data, logs, clean-up) is on the{' '}
            <a href={d.boardUrl}>job board</a>.
          </p>
        </section>
      ) : null}

      <section className="card">
        <h2>Failed jobs</h2>
        {d.failedKinds.length ? (
          <ul className="inline-list">
            {d.failedKinds.map((k) => (
              <li key={`${k.queue}:${k.name}`}>
                <strong>{k.count}</strong> {k.name} <span className="muted">({k.queue})</span>{' '}
                {d.canRetry ? (
                  <Form method="post" className="inline">
                    <CsrfInput />
                    <input type="hidden" name="intent" value="retry-kind" />
                    <input type="hidden" name="queue" value={k.queue} />
                    <input type="hidden" name="name" value={k.name} />
                    <button type="submit" className="secondary small" disabled={busy}>
                      Retry all {k.name}
                    </button>
                  </Form>
                ) : null}
              </li>
            ))}
          </ul>
        ) : null}
        {d.failed.length === 0 ? (
          <p className="muted">No failed jobs.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Failed</th>
                <th>Job</th>
                <th>Customer</th>
                <th>What went wrong</th>
                <th>Attempts</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {d.failed.map((j) => (
                <tr key={`${j.queue}:${j.id}`} data-job-id={j.id}>
                  <td>
                    <Time iso={j.failedAt} />
                  </td>
                  <td>
                    {j.name} <span className="muted">{j.queue}</span>
                    {j.inboxId !== null ? (
                      <>
                        {' '}
                        · <Link to={`/webhooks/${j.inboxId}`}>delivery #{j.inboxId}</Link>
                      </>
                    ) : null}
                  </td>
                  <td>
                    {j.userId ? <Link to={`/users/${j.userId}`}>{j.externalUserId ?? 'customer'}</Link> : <span className="muted">—</span>}
                  </td>
                  <td>
                    {j.plain}
                    {j.raw && j.raw !== j.plain ? (
                      <details>
                        <summary className="muted">technical detail</summary>
                        <code>{j.raw}</code>
                      </details>
                    ) : null}
                  </td>
                  <td>{j.attempts}</td>
                  <td>
                    {d.canRetry ? (
                      <Form method="post">
                        <CsrfInput />
                        <input type="hidden" name="intent" value="retry-one" />
                        <input type="hidden" name="queue" value={j.queue} />
                        <input type="hidden" name="jobId" value={j.id} />
                        <button type="submit" className="small" disabled={busy}>
                          Retry
                        </button>
                      </Form>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </main>
  );
}
