import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData, useRevalidator, useRouteError } from '@remix-run/react';
import { useEffect } from 'react';
import { useTranslation } from 'react-i18next';
import { requireOperator } from '~/auth.server';
import { useEta } from '~/components/eta';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { routeErrorMessage } from '~/components/route-error';
import { StateBadge, TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { refreshRunData } from '~/refresh.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'refresh:run.page_title') }];

/** Read-only (the Drift page links here for every role); starting a run needs compliance. */
export async function loader({ request, params }: LoaderFunctionArgs) {
  await requireOperator(request, 'viewer');
  const id = /^\d{1,9}$/.test(params.runId ?? '') ? Number(params.runId) : NaN;
  const d = Number.isFinite(id) ? await refreshRunData(id) : null;
  if (!d) throw new Response('refresh:run.not_found', { status: 404 });
  return d;
}

const POLL_MS = 2_000;

export default function RefreshRunPage() {
  const { t } = useTranslation('refresh');
  const fmt = useFormat();
  const say = useSay();
  const eta = useEta();
  const { run, drift, requestedBy } = useLoaderData<typeof loader>();
  const revalidator = useRevalidator();
  const open = run.status !== 'done' && run.status !== 'failed';
  useEffect(() => {
    if (!open) return;
    const timer = setInterval(() => {
      if (revalidator.state === 'idle' && document.visibilityState === 'visible') revalidator.revalidate();
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [open, revalidator]);
  const p = run.progress;
  const done = p.answered + p.failed;
  const remainingEta = open && p.pending ? eta(Math.ceil(p.pending / Math.max(0.001, run.ratePerSec))) : null;

  return (
    <main className="page">
      <p>
        <Link to="/refresh">{t('run.back')}</Link>
      </p>
      <h1>{t('run.heading', { id: run.id, kind: t(`run.kinds.${run.kind}`, { defaultValue: run.kind }) })}</h1>
      <section className="card" aria-live="polite" data-testid="run-progress">
        <p>
          {t('run.status')}{' '}
          <strong data-testid="run-status" title={run.status}>
            {t(`statuses.${run.status}`, { defaultValue: run.status })}
          </strong>
          {requestedBy ? t('run.started_by', { name: requestedBy }) : ''}
          {t('run.created')} <TimeAgo iso={run.createdAt} />
          {run.finishedAt ? (
            <>
              {t('run.finished')} <TimeAgo iso={run.finishedAt} />
            </>
          ) : null}
        </p>
        <p>
          <progress max={Math.max(1, p.total)} value={done} /> {t('run.answered_of', { done: fmt.number(done), count: p.total })}
          {run.status === 'enqueuing' ? t('run.handed_to_queue', { count: run.enqueued }) : ''}
        </p>
        <ul>
          <li>{t('run.answered_by_capa', { count: p.answered })}</li>
          {p.failed ? <li className="error">{t('run.failed', { count: p.failed })}</li> : null}
          {p.pending ? (
            <li>
              {remainingEta
                ? t('run.waiting_eta', { count: p.pending, eta: remainingEta, rate: fmt.number(run.ratePerSec) })
                : t('run.waiting', { count: p.pending })}
            </li>
          ) : null}
          {run.skipped ? <li className="muted">{t('run.skipped', { count: run.skipped })}</li> : null}
          <li>{t('run.drift', { count: p.drift })}</li>
        </ul>
        {run.status === 'queued' ? <p className="muted">{t('run.queued_note')}</p> : null}
        {run.error ? <p className="error">{say(run.error)}</p> : null}
      </section>
      {drift.length ? (
        <section className="card" aria-labelledby="drift">
          <h2 id="drift">{t('run.drift_heading')}</h2>
          <table className="compact">
            <thead>
              <tr>
                <th>{t('run.customer')}</th>
                <th>{t('run.we_showed')}</th>
                <th>{t('run.capa_said')}</th>
                <th>{t('run.likely_missed')}</th>
              </tr>
            </thead>
            <tbody>
              {drift.map((x) => (
                <tr key={x.id}>
                  <td>
                    <Link to={`/users/${x.userId}`}>
                      <code>{x.externalUserId}</code>
                    </Link>
                  </td>
                  <td>
                    <StateBadge state={x.wasState} />
                  </td>
                  <td>
                    <StateBadge state={x.nowState} />
                  </td>
                  <td>{x.missedEvents?.replace(/,/g, ', ') ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
    </main>
  );
}

export function ErrorBoundary() {
  const { t } = useTranslation('refresh');
  const error = useRouteError();
  const text = routeErrorMessage(error, t('run.load_failed'), t);
  return (
    <main className="page">
      <p>
        <Link to="/refresh">{t('run.back')}</Link>
      </p>
      <h1>{t('run.heading_plain')}</h1>
      <p className="error">{text}</p>
    </main>
  );
}
