import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { capaDeliveryDetail, retryCapaDelivery } from '~/capa-log.server';
import { CsrfInput } from '~/components/csrf';
import { useSay } from '~/components/message';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { StateBadge } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'capa-log:detail.page_title') }];

export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  const id = params.id ?? '';
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(id)) throw new Response('capa-log:detail.not_an_id', { status: 404 });
  return capaDeliveryDetail(who, id);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  return retryCapaDelivery(request, who, who.form);
}

export default function CapaDelivery() {
  const { t } = useTranslation('capa-log');
  const say = useSay();
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
        <Link to="/capa/deliveries">{t('detail.back')}</Link>
      </p>
      <h1>
        {t('detail.heading')} {n ? <span className="muted">{n.payload?.event ?? ''}</span> : null}
      </h1>
      <OpsNav />
      <ActionToast result={result} />
      {!d.found || !n ? (
        <div className="toast error" role="alert">
          {say(d.error)}
        </div>
      ) : (
        <>
          <section className="card">
            <dl className="facts">
              <dt>{t('detail.id')}</dt>
              <dd>
                <code>{n.id}</code>
              </dd>
              <dt>{t('detail.status')}</dt>
              <dd>
                <span className={`badge ${n.status}`} title={n.status}>
                  {t(`statuses.${n.status}`, { defaultValue: n.status })}
                </span>{' '}
                <span className="muted">{t(`status_words.${n.status}`, { defaultValue: '' })}</span>
              </dd>
              <dt>{t('detail.automatic')}</dt>
              <dd>{n.retryAttempts}</dd>
              <dt>{t('detail.manual')}</dt>
              <dd>
                {t('detail.manual_of', { count: n.manualRetryCount, limit: d.limits.perNotification })}
                {n.lastManualRetryAt ? (
                  <span className="muted">
                    {' '}
                    · {t('detail.last')} <Time iso={n.lastManualRetryAt} />
                  </span>
                ) : null}
              </dd>
              <dt>{t('detail.created_updated')}</dt>
              <dd>
                <Time iso={n.createdAt} /> / <Time iso={n.updatedAt} />
              </dd>
              <dt>{t('detail.customer')}</dt>
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
                  {t('detail.send_again')}
                </button>{' '}
                {d.blocked ? (
                  <span className="muted">{say(d.blocked)}</span>
                ) : (
                  <span className="muted">
                    {t('detail.uses_budget', { perNotification: d.limits.perNotification, perMinute: d.limits.perMinute })}
                  </span>
                )}
              </Form>
            ) : null}
          </section>
          <section className="card">
            <h2>{t('detail.payload')}</h2>
            <pre className="raw">{JSON.stringify(n.payload, null, 2)}</pre>
            <h3>{t('detail.last_failure')}</h3>
            <pre className="raw">
              {n.latestErrorPayload === null || n.latestErrorPayload === undefined ? '—' : JSON.stringify(n.latestErrorPayload, null, 2)}
            </pre>
          </section>
          <section className="card">
            <h2>{t('detail.in_inbox')}</h2>
            {d.ours.length === 0 ? (
              <p className="muted">{t('detail.none_in_inbox')}</p>
            ) : (
              <ul>
                {d.ours.map((o) => (
                  <li key={o.id}>
                    <Link to={`/webhooks/${o.id}`}>#{o.id}</Link> <Time iso={o.receivedAt} /> —{' '}
                    {t(`inbox:verdicts.${o.signatureVerdict}`, { defaultValue: o.signatureVerdict })},{' '}
                    {t(`inbox:statuses.${o.status}`, { defaultValue: o.status })}
                    {o.duplicateOf !== null ? ` ${t('detail.repeat_of', { id: o.duplicateOf })}` : ''}
                    {o.stateFrom && o.stateTo && o.stateFrom !== o.stateTo ? (
                      <>
                        {' '}
                        — <StateBadge state={o.stateFrom} /> → <StateBadge state={o.stateTo} />
                      </>
                    ) : o.effect ? (
                      ` — ${t(`inbox:effects.${o.effect}`, { defaultValue: o.effect.replace(/_/g, ' ') })}`
                    ) : (
                      ''
                    )}
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
