import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data as withStatus } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import type { ActionResult } from '~/action-result';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { ActionToast, OpsNav, Time } from '~/components/ops';
import { StateBadge } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { inboxDetailData, reprocessDelivery } from '~/inbox.server';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = ({ matches, params }) => [{ title: pageTitle(matches, 'inbox:detail.page_title', { id: params.id }) }];

function parseId(raw: string | undefined): number | null {
  return raw && /^\d{1,12}$/.test(raw) && Number(raw) > 0 ? Number(raw) : null;
}

export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  const id = parseId(params.id);
  const d = id === null ? null : await inboxDetailData(who, id);
  if (!d) throw new Response('inbox:detail.not_found', { status: 404 });
  return d;
}

export async function action({ request, params }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  const id = parseId(params.id);
  if (id === null) return withStatus<ActionResult>({ tone: 'error', code: 'inbox:detail.not_found' }, { status: 404 });
  return reprocessDelivery(request, who, id, who.form);
}

export default function WebhookDetail() {
  const { t } = useTranslation('inbox');
  const fmt = useFormat();
  const say = useSay();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  // A new request id each time the row changes: the id is what makes a double click one action.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const requestId = useMemo(() => newRequestId(), [d.delivery.status, d.delivery.attempts]);
  const w = d.delivery;
  const busy = navigation.state === 'submitting';
  // Headers hidden for this role are listed by name; their values never reach the page.
  const headers = { ...d.headers, ...Object.fromEntries(d.hiddenHeaders.map((h) => [h, t('detail.hidden_for_role')])) };

  return (
    <main className="page wide">
      <p>
        <Link to="/webhooks">{t('detail.back')}</Link>
      </p>
      <h1>
        {t('detail.heading', { id: w.id })}{' '}
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
          <dt>{t('detail.received')}</dt>
          <dd>
            <Time iso={w.receivedAt} />
          </dd>
          <dt>{t('detail.signature')}</dt>
          <dd className={w.signatureVerdict === 'valid' ? '' : 'error'}>
            {t(`verdicts.${w.signatureVerdict}`, { defaultValue: w.signatureVerdict })}
            {w.secretIndex !== null ? <span className="muted">{t('detail.secret', { n: w.secretIndex + 1 })}</span> : null}
          </dd>
          <dt>{t('detail.status')}</dt>
          <dd>
            <span className={`badge ${w.status}`} title={w.status}>
              {t(`statuses.${w.status}`, { defaultValue: w.status })}
            </span>{' '}
            {w.attempts > 0 ? <span className="muted">{t('detail.after_attempts', { count: w.attempts })}</span> : null}
          </dd>
          <dt>{t('detail.new_repeat')}</dt>
          <dd>
            {d.context.original ? (
              <>
                {t('detail.repeat_of')} <Link to={`/webhooks/${d.context.original.id}`}>#{d.context.original.id}</Link>
              </>
            ) : (
              t('detail.new')
            )}
            {d.context.duplicates.length ? (
              <>
                {' '}
                · {t('detail.repeated_by')}{' '}
                {d.context.duplicates.map((x) => (
                  <Link key={x.id} to={`/webhooks/${x.id}`}>
                    #{x.id}{' '}
                  </Link>
                ))}
              </>
            ) : null}
          </dd>
          <dt>{t('detail.customer')}</dt>
          <dd>
            {d.context.customer ? (
              <Link to={`/users/${d.context.customer.id}`}>{d.context.customer.externalUserId}</Link>
            ) : w.externalUserId ? (
              <span>
                {w.externalUserId} <span className="muted">{t('detail.not_our_customer')}</span>
              </span>
            ) : (
              <span className="muted">—</span>
            )}
          </dd>
          <dt>{t('detail.effect')}</dt>
          <dd>
            {w.stateFrom && w.stateTo && w.stateFrom !== w.stateTo ? (
              <strong>
                <StateBadge state={w.stateFrom} /> → <StateBadge state={w.stateTo} />
              </strong>
            ) : w.effect ? (
              t(`effects.${w.effect}`, { defaultValue: w.effect.replace(/_/g, ' ') })
            ) : (
              '—'
            )}
            {w.processedAt ? (
              <span className="muted">
                {' '}
                · {t('detail.settled')} <Time iso={w.processedAt} />
              </span>
            ) : null}
          </dd>
          <dt>{t('detail.error')}</dt>
          <dd className={w.errorMessage ? 'error' : 'muted'} title={w.error ?? undefined}>
            {w.errorMessage ? say(w.errorMessage) : '—'}
          </dd>
        </dl>
      </section>

      <section className="card">
        <h2>{t('detail.reprocess_heading')}</h2>
        {!d.canReprocess ? (
          <p className="muted">{t('detail.admin_only')}</p>
        ) : !d.reprocessRefusal ? (
          <Form method="post">
            <CsrfInput />
            <input type="hidden" name="intent" value="reprocess" />
            <input type="hidden" name="requestId" value={requestId} />
            <p className="muted">{t('detail.reprocess_intro')}</p>
            <button type="submit" disabled={busy}>
              {busy ? t('detail.queuing') : t('detail.reprocess')}
            </button>
          </Form>
        ) : (
          <p>
            <button type="button" disabled>
              {t('detail.reprocess')}
            </button>{' '}
            <span className="muted">{t(`reprocess.reason.${d.reprocessRefusal}`)}</span>
          </p>
        )}
      </section>

      <section className="card">
        <h2>
          {t('detail.raw_body')} {d.body.masked ? <span className="muted">{t('detail.masked')}</span> : null}
        </h2>
        <pre className="raw">{d.body.text ?? t('detail.body_hidden', { count: d.body.bytes })}</pre>
        <h3>{t('detail.headers')}</h3>
        <pre className="raw">{JSON.stringify(headers, null, 2)}</pre>
      </section>

      <section className="card">
        <h2>{t('detail.caused')}</h2>
        {d.context.stateChanges.length === 0 ? (
          <p className="muted">{t('detail.no_state_change')}</p>
        ) : (
          <ul>
            {d.context.stateChanges.map((s) => (
              <li key={s.id}>
                <Time iso={s.at} />: <StateBadge state={s.fromState} /> → <StateBadge state={s.toState} />
              </li>
            ))}
          </ul>
        )}
        <h3>{t('detail.worker_runs')}</h3>
        {d.context.jobRuns.length === 0 ? (
          <p className="muted">{t('detail.none_recorded')}</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>{t('detail.started')}</th>
                <th>{t('detail.attempt')}</th>
                <th>{t('detail.result')}</th>
                <th>{t('detail.error_column')}</th>
              </tr>
            </thead>
            <tbody>
              {d.context.jobRuns.map((j) => (
                <tr key={j.id}>
                  <td>
                    <Time iso={j.startedAt} />
                  </td>
                  <td>{fmt.number(j.attempt)}</td>
                  <td title={j.status}>{t(`job_statuses.${j.status}`, { defaultValue: j.status })}</td>
                  <td className={j.errorMessage ? 'error' : 'muted'} title={j.error ?? undefined}>
                    {j.errorMessage ? say(j.errorMessage) : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>{t('detail.operator_actions')}</h3>
        {d.audit.length === 0 ? (
          <p className="muted">{t('detail.none')}</p>
        ) : (
          <ul>
            {d.audit.map((a) => (
              <li key={a.id}>
                <Time iso={a.at} />: {a.actor} — {t(`audit:actions.${a.action}`, { defaultValue: a.action })} (
                {t(`outcomes.${a.outcome}`, { defaultValue: a.outcome })})
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}
