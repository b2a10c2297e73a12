import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData, useRevalidator, useRouteError } from '@remix-run/react';
import { routeErrorMessage } from '~/components/route-error';
import { useEffect } from 'react';
import { requireOperator } from '~/auth.server';
import { StateBadge, TimeAgo } from '~/components/ui';
import { refreshRunData } from '~/refresh.server';

export const meta: MetaFunction = () => [{ title: 'Refresh run — KYC Desk' }];

/** Read-only (the Drift page links here for every role); starting a run needs compliance. */
export async function loader({ request, params }: LoaderFunctionArgs) {
  await requireOperator(request, 'viewer');
  const id = /^\d{1,9}$/.test(params.runId ?? '') ? Number(params.runId) : NaN;
  if (!Number.isFinite(id)) throw new Response('There is no refresh run with that number.', { status: 404 });
  const d = await refreshRunData(id);
  if (!d) throw new Response(`Refresh run #${id} does not exist.`, { status: 404 });
  return d;
}

/** Client-side too (the page re-renders while polling), so not imported from a .server module. */
function etaText(seconds: number): string {
  if (seconds < 60) return `about ${seconds} s`;
  if (seconds < 3600) return `about ${Math.ceil(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}

const KIND_LABEL: Record<string, string> = {
  scheduled: 'Scheduled cycle',
  all_stale: 'All stale customers',
  selected: 'Selected customers',
};
const POLL_MS = 2_000;

export default function RefreshRunPage() {
  const { run, drift, requestedBy } = useLoaderData<typeof loader>();
  const revalidator = useRevalidator();
  const open = run.status !== 'done' && run.status !== 'failed';
  useEffect(() => {
    if (!open) return;
    const t = setInterval(() => {
      if (revalidator.state === 'idle' && document.visibilityState === 'visible') revalidator.revalidate();
    }, POLL_MS);
    return () => clearInterval(t);
  }, [open, revalidator]);
  const p = run.progress;
  const done = p.answered + p.failed;
  const remainingEta = open && p.pending ? etaText(Math.ceil(p.pending / Math.max(0.001, run.ratePerSec))) : null;

  return (
    <main className="page">
      <p>
        <Link to="/refresh">← Refresh stale customers</Link>
      </p>
      <h1>
        Refresh run #{run.id} — {KIND_LABEL[run.kind] ?? run.kind}
      </h1>
      <section className="card" aria-live="polite" data-testid="run-progress">
        <p>
          Status: <strong data-testid="run-status">{run.status}</strong>
          {requestedBy ? ` · started by ${requestedBy}` : ''} · created <TimeAgo iso={run.createdAt} />
          {run.finishedAt ? (
            <>
              {' '}
              · finished <TimeAgo iso={run.finishedAt} />
            </>
          ) : null}
        </p>
        <p>
          <progress max={Math.max(1, p.total)} value={done} /> {done} of {p.total} customer{p.total === 1 ? '' : 's'} answered
          {run.status === 'enqueuing' ? ` (${run.enqueued} handed to the Capa queue so far)` : ''}
        </p>
        <ul>
          <li>{p.answered} answered by Capa</li>
          {p.failed ? <li className="error">{p.failed} failed after every retry (see each customer’s timeline)</li> : null}
          {p.pending ? (
            <li>
              {p.pending} waiting{remainingEta ? ` — ${remainingEta} at ${run.ratePerSec}/s` : ''}
            </li>
          ) : null}
          {run.skipped ? <li className="muted">{run.skipped} skipped (not in Capa yet)</li> : null}
          <li>
            {p.drift} drift entr{p.drift === 1 ? 'y' : 'ies'} (Capa differed from what we showed)
          </li>
        </ul>
        {run.status === 'queued' ? (
          <p className="muted">
            Waiting for a worker to pick this run up. It is stored: if the job queue was unavailable, the next scheduled cycle queues it.
          </p>
        ) : null}
        {run.error ? <p className="error">{run.error}</p> : null}
      </section>
      {drift.length ? (
        <section className="card" aria-labelledby="drift">
          <h2 id="drift">Drift found by this run</h2>
          <table className="compact">
            <thead>
              <tr>
                <th>Customer</th>
                <th>We showed</th>
                <th>Capa said</th>
                <th>Likely missed</th>
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
  const error = useRouteError();
  return (
    <main className="page">
      <p>
        <Link to="/refresh">← Refresh stale customers</Link>
      </p>
      <h1>Refresh run</h1>
      <p className="error">{routeErrorMessage(error, 'This run could not be loaded. Try again in a moment.')}</p>
    </main>
  );
}
