import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData } from '@remix-run/react';
import { requireOperator } from '~/auth.server';
import { homeData } from '~/users.server';
import { FlashToast } from '~/components/toast';
import { StateBadge, TimeAgo } from '~/components/ui';

export const meta: MetaFunction = () => [{ title: 'Home — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return homeData(who);
}

const STATE_LABEL: Record<string, string> = {
  NOT_STARTED: 'Created, no link yet',
  LINK_ISSUED: 'Link sent, not started',
  IN_PROGRESS: 'Started, waiting for Capa',
  REVIEW_NEEDED: 'Waiting for manual review',
};

export default function Home() {
  const { counts, funnel, oldest } = useLoaderData<typeof loader>();
  const max = Math.max(1, funnel[0]?.count ?? 1);
  const total = funnel[0]?.count ?? 0;
  return (
    <main className="page">
      <FlashToast />
      <h1>Home</h1>
      <section className="card" aria-labelledby="counts-h">
        <h2 id="counts-h">Customers by state</h2>
        <div className="chips">
          {Object.entries(counts).map(([state, n]) => (
            <Link key={state} to={`/users?state=${state}`} className="chip">
              <StateBadge state={state} /> <strong>{n}</strong>
            </Link>
          ))}
        </div>
        {total === 0 ? (
          <p className="muted">
            No customers yet. <Link to="/users/new">Create the first one</Link>.
          </p>
        ) : null}
      </section>
      <section className="card" aria-labelledby="funnel-h">
        <h2 id="funnel-h">Funnel</h2>
        <figure className="funnel" aria-label="KYC funnel">
          {funnel.map((s) => (
            <div key={s.key} className={`funnel-row ${s.key}`}>
              <span className="funnel-label">{s.label}</span>
              <span className="funnel-bar-wrap">
                <span className="funnel-bar" style={{ width: `${(s.count / max) * 100}%` }} />
              </span>
              <span className="funnel-count">
                {s.count}
                {total ? <span className="muted"> ({Math.round((s.count / total) * 100)}%)</span> : null}
              </span>
            </div>
          ))}
        </figure>
      </section>
      <section className="card" aria-labelledby="oldest-h">
        <h2 id="oldest-h">Waiting longest</h2>
        <div className="grid-2">
          {oldest.map((o) => (
            <div key={o.state}>
              <h3>
                {STATE_LABEL[o.state] ?? o.state} <span className="muted">({counts[o.state as keyof typeof counts]})</span>
              </h3>
              {o.users.length === 0 ? (
                <p className="muted">Nobody waiting.</p>
              ) : (
                <ul className="plain">
                  {o.users.map((u) => (
                    <li key={u.id}>
                      <Link to={`/users/${u.id}`}>{u.alias || u.email}</Link>{' '}
                      <span className="muted">
                        · since <TimeAgo iso={u.kycStateChangedAt} />
                      </span>
                    </li>
                  ))}
                </ul>
              )}
            </div>
          ))}
        </div>
      </section>
    </main>
  );
}
