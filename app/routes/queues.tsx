import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { pageTitle } from '~/i18n';
import { queueAction, queuesData } from '~/queues.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'queues:page_title') }];

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
  const { t } = useTranslation('queues');
  const fmt = useFormat();
  const say = useSay();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = navigation.state === 'submitting';

  return (
    <main className="page wide">
      <h1>{t('heading')}</h1>
      <OpsNav />
      <ActionToast result={result} />

      {d.redisError ? (
        <div className="toast error" role="alert">
          {t('redis_down', { detail: d.redisError })}
        </div>
      ) : null}
      {d.noWorker.length ? (
        <div className="toast error" role="alert" data-testid="no-worker">
          {t('no_worker', { queues: d.noWorker.join(', ') })}
        </div>
      ) : null}

      {d.health ? (
        <section className="card">
          <h2>{t('per_queue')}</h2>
          <table>
            <thead>
              <tr>
                <th>{t('queue')}</th>
                <th>{t('workers')}</th>
                {STATES.map((s) => (
                  <th key={s} title={s}>
                    {t(`states.${s}`)}
                  </th>
                ))}
                <th>{t('oldest_waiting')}</th>
              </tr>
            </thead>
            <tbody>
              {d.health.map((q) => (
                <tr key={q.name} data-queue={q.name}>
                  <td>
                    <a href={`${d.boardUrl}/queue/${q.name}`}>{q.name}</a>
                    {q.paused ? <span className="error"> {t('paused')}</span> : null}
                  </td>
                  <td className={q.needsWorker && q.workers === 0 ? 'error' : ''}>{fmt.number(q.workers)}</td>
                  {STATES.map((s) => (
                    <td
                      key={s}
                      className={(s === 'failed' && q.counts[s] > 0) || (s === 'waiting' && q.backlog > d.backlogLimit) ? 'error' : ''}
                    >
                      {fmt.number(q.counts[s])}
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
            {t('backlog_note', { limit: fmt.number(d.backlogLimit) })} <a href={d.boardUrl}>{t('job_board')}</a>.
          </p>
        </section>
      ) : null}

      <section className="card">
        <h2>{t('failed_heading')}</h2>
        {d.failedKinds.length ? (
          <ul className="inline-list">
            {d.failedKinds.map((k) => (
              <li key={`${k.queue}:${k.name}`}>
                <strong>{fmt.number(k.count)}</strong> {k.name} <span className="muted">({k.queue})</span>{' '}
                {d.canRetry ? (
                  <Form method="post" className="inline">
                    <CsrfInput />
                    <input type="hidden" name="intent" value="retry-kind" />
                    <input type="hidden" name="queue" value={k.queue} />
                    <input type="hidden" name="name" value={k.name} />
                    <button type="submit" className="secondary small" disabled={busy}>
                      {t('retry_all', { name: k.name })}
                    </button>
                  </Form>
                ) : null}
              </li>
            ))}
          </ul>
        ) : null}
        {d.failed.length === 0 ? (
          <p className="muted">{t('no_failed')}</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>{t('columns.failed')}</th>
                <th>{t('columns.job')}</th>
                <th>{t('columns.customer')}</th>
                <th>{t('columns.what')}</th>
                <th>{t('columns.attempts')}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {d.failed.map((j) => {
                const plain = say(j.plain);
                return (
                  <tr key={`${j.queue}:${j.id}`} data-job-id={j.id}>
                    <td>
                      <Time iso={j.failedAt} />
                    </td>
                    <td>
                      {j.name} <span className="muted">{j.queue}</span>
                      {j.inboxId !== null ? (
                        <>
                          {' '}
                          · <Link to={`/webhooks/${j.inboxId}`}>{t('delivery', { id: j.inboxId })}</Link>
                        </>
                      ) : null}
                    </td>
                    <td>
                      {j.userId ? (
                        <Link to={`/users/${j.userId}`}>{j.externalUserId ?? t('customer')}</Link>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td>
                      {plain}
                      {j.raw && j.raw !== plain ? (
                        <details>
                          <summary className="muted">{t('technical')}</summary>
                          <code>{j.raw}</code>
                        </details>
                      ) : null}
                    </td>
                    <td>{fmt.number(j.attempts)}</td>
                    <td>
                      {d.canRetry ? (
                        <Form method="post">
                          <CsrfInput />
                          <input type="hidden" name="intent" value="retry-one" />
                          <input type="hidden" name="queue" value={j.queue} />
                          <input type="hidden" name="jobId" value={j.id} />
                          <button type="submit" className="small" disabled={busy}>
                            {t('retry_button')}
                          </button>
                        </Form>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </main>
  );
}
