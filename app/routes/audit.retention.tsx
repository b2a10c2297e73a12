import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData } from '@remix-run/react';
import { Fragment } from 'react';
import { useTranslation } from 'react-i18next';
import { requireOperator } from '~/auth.server';
import { Time } from '~/components/ops';
import { retentionPageData } from '~/evidence.server';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'evidence:retention.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return retentionPageData();
}

type Data = Awaited<ReturnType<typeof loader>>;
type Run = Data['runs'][number];

/** Counts per KYC state, in words ("Rejected: 3"); a dash when there are none. */
function Counts({ counts }: { counts: Run['erased'] }) {
  const { t } = useTranslation('evidence');
  const entries = Object.entries(counts).filter(([, n]) => n);
  if (!entries.length) return <span className="muted">0</span>;
  return (
    <ul className="plain">
      {entries.map(([state, count]) => (
        <li key={state}>{t('retention.per_state', { state: t(`common:states.${state}`), count })}</li>
      ))}
    </ul>
  );
}

function Customers({ run, shown }: { run: Run; shown: number }) {
  const { t } = useTranslation('evidence');
  if (!run.customers.length) return <span className="muted">—</span>;
  return (
    <details>
      <summary>{t('retention.customers_count', { count: run.erasedTotal })}</summary>
      <ul className="plain">
        {run.customers.map((c) => (
          <li key={c.userId}>
            <Link to={`/users/${c.userId}/erasure`}>
              <code>{c.userId}</code>
            </Link>
          </li>
        ))}
      </ul>
      {run.erasedTotal > shown ? <p className="muted">{t('retention.more', { count: run.erasedTotal - shown })}</p> : null}
    </details>
  );
}

export default function RetentionRuns() {
  const { t } = useTranslation('evidence');
  const d = useLoaderData<typeof loader>();
  return (
    <main className="page">
      <p>
        <Link to="/audit">{t('retention.back')}</Link>
      </p>
      <h1>{t('retention.heading')}</h1>
      <p className="muted">{t('retention.intro')}</p>
      <section className="card">
        <h2>{t('retention.policy_heading')}</h2>
        <dl className="facts" data-testid="retention-policy">
          {d.policy.map((p) => (
            <Fragment key={p.state}>
              <dt>{t(`common:states.${p.state}`)}</dt>
              <dd>{p.years ? t('retention.years', { count: p.years }) : t('retention.forever')}</dd>
            </Fragment>
          ))}
        </dl>
      </section>
      <section className="card">
        <h2>{t('retention.runs_heading')}</h2>
        {d.runs.length ? (
          <table className="compact" data-testid="retention-runs">
            <thead>
              <tr>
                <th>{t('retention.columns.started')}</th>
                <th>{t('retention.columns.finished')}</th>
                <th>{t('retention.columns.erased')}</th>
                <th>{t('retention.columns.held')}</th>
                <th>{t('retention.columns.failed')}</th>
                <th>{t('retention.columns.customers')}</th>
              </tr>
            </thead>
            <tbody>
              {d.runs.map((r) => (
                <tr key={r.id} data-testid="retention-run">
                  <td>
                    <Time iso={r.startedAt} />
                  </td>
                  <td>{r.finishedAt ? <Time iso={r.finishedAt} /> : t('retention.running')}</td>
                  <td>
                    <Counts counts={r.erased} />
                  </td>
                  <td>
                    <Counts counts={r.held} />
                  </td>
                  <td className={r.failed ? 'error' : undefined}>{r.failed}</td>
                  <td>
                    <Customers run={r} shown={d.customersShown} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{t('retention.no_runs')}</p>
        )}
      </section>
    </main>
  );
}
