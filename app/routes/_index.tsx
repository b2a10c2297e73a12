import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireOperator } from '~/auth.server';
import { homeData } from '~/users.server';
import { useFormat } from '~/components/format';
import { FlashToast } from '~/components/toast';
import { StateBadge, TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'dashboard:page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return homeData(who);
}

export default function Home() {
  const { t } = useTranslation('dashboard');
  const fmt = useFormat();
  const { counts, funnel, oldest } = useLoaderData<typeof loader>();
  const max = Math.max(1, funnel[0]?.count ?? 1);
  const total = funnel[0]?.count ?? 0;
  return (
    <main className="page">
      <FlashToast />
      <h1>{t('heading')}</h1>
      <section className="card" aria-labelledby="counts-h">
        <h2 id="counts-h">{t('counts.heading')}</h2>
        <div className="chips">
          {Object.entries(counts).map(([state, n]) => (
            <Link key={state} to={`/users?state=${state}`} className="chip">
              <StateBadge state={state} /> <strong>{fmt.number(n)}</strong>
            </Link>
          ))}
        </div>
        {total === 0 ? (
          <p className="muted">
            {t('counts.empty')} <Link to="/users/new">{t('counts.create_first')}</Link>
          </p>
        ) : null}
      </section>
      <section className="card" aria-labelledby="funnel-h">
        <h2 id="funnel-h">{t('funnel.heading')}</h2>
        <figure className="funnel" aria-label={t('funnel.label')}>
          {funnel.map((s) => (
            <div key={s.key} className={`funnel-row ${s.key}`}>
              <span className="funnel-label">{t(`funnel.${s.key}`)}</span>
              <span className="funnel-bar-wrap">
                <span className="funnel-bar" style={{ width: `${(s.count / max) * 100}%` }} />
              </span>
              <span className="funnel-count">
                {fmt.number(s.count)}
                {total ? <span className="muted"> ({fmt.percent(s.count / total, 0)})</span> : null}
              </span>
            </div>
          ))}
        </figure>
      </section>
      <section className="card" aria-labelledby="oldest-h">
        <h2 id="oldest-h">{t('oldest.heading')}</h2>
        <div className="grid-2">
          {oldest.map((o) => (
            <div key={o.state}>
              <h3>
                {t(`oldest.${o.state}`)} <span className="muted">({fmt.number(counts[o.state as keyof typeof counts])})</span>
              </h3>
              {o.users.length === 0 ? (
                <p className="muted">{t('oldest.nobody')}</p>
              ) : (
                <ul className="plain">
                  {o.users.map((u) => (
                    <li key={u.id}>
                      <Link to={`/users/${u.id}`}>{u.alias || u.email}</Link>{' '}
                      <span className="muted">
                        · {t('oldest.since')} <TimeAgo iso={u.kycStateChangedAt} />
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
