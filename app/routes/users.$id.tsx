import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import {
  Form,
  Link,
  isRouteErrorResponse,
  useActionData,
  useLoaderData,
  useNavigation,
  useRevalidator,
  useRouteError,
} from '@remix-run/react';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { runUserAction, userPageData } from '~/users.server';
import { CsrfInput } from '~/components/csrf';
import { DocumentThumbs } from '~/components/documents';
import { DossierLinks } from '~/components/export-link';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { FlashToast, Toast } from '~/components/toast';
import { CopyButton, StateBadge, TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { newRequestId } from '~/schemas';
import type { TimelineText, TimelineValue } from '~/timeline-entry';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'users:page.page_title') }];

export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  const page = await userPageData(who, params.id!);
  return { ...page, requestIds: { link: newRequestId(), fetch: newRequestId(), create: newRequestId() } };
}

export async function action({ request, params }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const result = await runUserAction(request, who, params.id!, who.form);
  return data(result, { status: result.errors ? 400 : 200 });
}

const POLL_MS = 3_000;

/** Re-reads the page while the outcome is still open, so the operator never reloads by hand. */
function usePolling(active: boolean) {
  const revalidator = useRevalidator();
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => {
      if (revalidator.state === 'idle' && document.visibilityState === 'visible') revalidator.revalidate();
    }, POLL_MS);
    return () => clearInterval(t);
  }, [active, revalidator]);
}

/** Timeline words: messages worded, text as it is, moments in the reader's time zone. */
function useTimelineWords() {
  const say = useSay();
  const fmt = useFormat();
  return (v: TimelineValue | null | undefined): string =>
    !v ? '' : typeof v === 'object' && 'time' in v ? fmt.dateTime(v.time, { seconds: true }) : say(v as TimelineText);
}

export default function UserPage() {
  const { t, i18n } = useTranslation('users');
  const say = useSay();
  const words = useTimelineWords();
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const navigation = useNavigation();
  const busyIntent = navigation.state === 'submitting' ? navigation.formData?.get('intent') : null;
  // Request ids stay fixed between polls (a double click reuses one) and rotate after a result.
  const [ids, setIds] = useState(d.requestIds);
  useEffect(() => {
    if (!result?.requestId) return;
    setIds((cur) => {
      const next = { ...cur };
      for (const k of Object.keys(next) as Array<keyof typeof next>) if (next[k] === result.requestId) next[k] = newRequestId();
      return next;
    });
  }, [result]);
  const [pollAfterAction, setPollAfterAction] = useState(false);
  useEffect(() => {
    if (!result) return;
    setPollAfterAction(true);
    const timer = setTimeout(() => setPollAfterAction(false), 60_000);
    return () => clearTimeout(timer);
  }, [result]);
  usePolling(!d.final || pollAfterAction);

  const u = d.user;
  const active = d.links.find((l) => l.status === 'active');
  const kind = (k: string) => (i18n.exists(`users:timeline.kinds.${k}`) ? t(`timeline.kinds.${k}`) : k);
  return (
    <main className="page wide">
      <p>
        <Link to="/users">{t('page.back')}</Link>
      </p>
      <FlashToast />
      {result ? <Toast tone={result.tone} text={say(result)} /> : null}
      {result?.link && d.canSeePii ? (
        <p className="card">
          {t('page.new_link')} <code className="wrap">{result.link}</code> <CopyButton text={result.link} />
        </p>
      ) : null}

      <header className="row-between">
        <div>
          <h1>{u.alias || u.email}</h1>
          <p className="muted">
            {u.email} · {t(`types.${u.type}`)} · {u.country ?? t('page.no_country')} · {t('page.created')} <TimeAgo iso={u.createdAt} />
          </p>
          <DossierLinks userId={u.id} />
        </div>
        <div className="state-box" data-testid="kyc-state">
          <StateBadge state={u.kycState} /> <code className="muted">{u.kycState}</code>
        </div>
      </header>

      <div className="grid-2">
        <section className="card" aria-labelledby="identity-h">
          <h2 id="identity-h">{t('page.identity')}</h2>
          <dl className="facts">
            <dt>{t('page.email')}</dt>
            <dd>{u.email}</dd>
            <dt>{t('page.external_id')}</dt>
            <dd>
              <code>{u.externalUserId}</code>
            </dd>
            <dt>{t('page.capa_id')}</dt>
            <dd>
              {u.capaUserId ? (
                <code>{u.capaUserId}</code>
              ) : (
                <span className="muted">{t('page.not_in_capa_yet', { sync: t(`page.capa_sync.${u.capaSync}`) })}</span>
              )}
            </dd>
            <dt>{t('page.our_id')}</dt>
            <dd>
              <code>{u.id}</code>
            </dd>
          </dl>
          {u.capaSync === 'failed' ? (
            <p className="error" role="alert">
              {t('page.capa_refused', { reason: say(u.capaSyncError) })}
            </p>
          ) : null}
        </section>

        <section className="card" aria-labelledby="state-h">
          <h2 id="state-h">{t('page.kyc_state')}</h2>
          <dl className="facts">
            <dt>{t('page.state')}</dt>
            <dd>
              <StateBadge state={u.kycState} /> {d.final ? null : <span className="muted">{t('page.watching')}</span>}
            </dd>
            <dt>{t('page.since')}</dt>
            <dd>
              <TimeAgo iso={u.kycStateChangedAt} />
            </dd>
            <dt>{t('page.why')}</dt>
            <dd>{u.kycStateReason ? words(u.kycStateReason) : '—'}</dd>
            <dt>{t('page.changed_by')}</dt>
            <dd>{u.kycStateCause ? <code>{u.kycStateCause}</code> : '—'}</dd>
            <dt>{t('page.capa_confirmed')}</dt>
            <dd>{u.capaConfirmedAt ? <TimeAgo iso={u.capaConfirmedAt} /> : <span className="muted">{t('page.never')}</span>}</dd>
          </dl>
          {u.unmappedResult ? <p className="warn">{t('page.unmapped', { result: u.unmappedResult })}</p> : null}
          {u.linkExpired ? <p className="warn">{t('page.link_expired')}</p> : null}
        </section>
      </div>

      {d.canAct ? (
        <section className="card actions" aria-labelledby="actions-h">
          <h2 id="actions-h">{t('page.actions')}</h2>
          <div className="action-row">
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="link" />
              <input type="hidden" name="requestId" value={ids.link} />
              <label htmlFor="link-country" className="inline">
                {t('page.link_country')}
              </label>{' '}
              <select id="link-country" name="country" defaultValue={u.country ?? 'MX'}>
                <option value="MX">MX</option>
                <option value="DO">DO</option>
              </select>{' '}
              <label htmlFor="link-locale" className="inline">
                {t('page.link_email_in')}
              </label>{' '}
              <select id="link-locale" name="locale" defaultValue={d.emailLocale}>
                <option value="es">{t('email_languages.es')}</option>
                <option value="en">{t('email_languages.en')}</option>
              </select>{' '}
              <label className="inline">
                <input type="checkbox" name="noEmail" /> {t('page.link_no_email')}
              </label>{' '}
              <button type="submit" disabled={busyIntent === 'link'}>
                {busyIntent === 'link' ? t('page.working') : active ? t('page.resend_link') : t('page.generate_link')}
              </button>
            </Form>
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="fetch" />
              <input type="hidden" name="requestId" value={ids.fetch} />
              <button type="submit" className="secondary" disabled={busyIntent === 'fetch'}>
                {busyIntent === 'fetch' ? t('page.asking_capa') : t('page.fetch_details')}
              </button>
            </Form>
            {u.capaSync !== 'created' ? (
              <Form method="post" className="inline">
                <CsrfInput />
                <input type="hidden" name="intent" value="create" />
                <input type="hidden" name="requestId" value={ids.create} />
                <button type="submit" className="secondary" disabled={busyIntent === 'create'}>
                  {t('page.send_to_capa')}
                </button>
              </Form>
            ) : null}
          </div>
        </section>
      ) : (
        <p className="muted">{t('page.read_only')}</p>
      )}

      <section className="card" aria-labelledby="links-h">
        <h2 id="links-h">{t('links.heading')}</h2>
        {d.links.length === 0 ? (
          <p className="muted">{d.canAct ? t('links.none_act') : t('links.none')}</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>{t('links.status')}</th>
                <th>{t('links.created')}</th>
                <th>{t('links.country')}</th>
                <th>{t('links.link')}</th>
              </tr>
            </thead>
            <tbody>
              {d.links.map((l) => (
                <tr key={l.id} className={`link-${l.status}`}>
                  <td>
                    <span className={`badge link-${l.status}`} title={l.status}>
                      {t(`links.statuses.${l.status}`)}
                    </span>
                  </td>
                  <td>
                    <TimeAgo iso={l.createdAt} />
                    {l.endedAt ? (
                      <div className="muted">
                        {t('links.ended')} <TimeAgo iso={l.endedAt} />
                      </div>
                    ) : null}
                  </td>
                  <td>{l.country}</td>
                  <td>
                    {d.canSeePii ? (
                      <>
                        <a href={l.url} target="_blank" rel="noreferrer noopener" className="wrap kyc-link">
                          {l.url}
                        </a>{' '}
                        {l.status === 'active' ? <CopyButton text={l.url} /> : null}
                      </>
                    ) : (
                      <span className="muted">{t('links.hidden')}</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section className="card" aria-labelledby="details-h">
        <h2 id="details-h">{t('details.heading')}</h2>
        {!d.details ? (
          <p className="muted">{d.canAct ? t('details.not_fetched_act') : t('details.not_fetched')}</p>
        ) : 'error' in d.details ? (
          <p className="error">{say(d.details.error)}</p>
        ) : (
          <>
            <p className="muted">
              {t('details.fetched')} <TimeAgo iso={d.details.fetchedAt} /> ·{' '}
              {t('details.result', { result: d.details.verificationResult ?? '—' })}
              {d.canSeePii ? null : ` · ${t('details.masked')}`}
            </p>
            <div className="grid-3">
              {d.details.sections.map((s) => (
                <div key={s.title} className={`detail-section ${s.tone ?? ''}`}>
                  <h3>{t(s.title)}</h3>
                  <dl className="facts">
                    {s.rows.map(([k, v, shape], i) => (
                      <div key={`${k.code}${i}`}>
                        <dt>{say(k)}</dt>
                        <dd className="wrap">{shape === 'time' && typeof v === 'string' ? words({ time: v }) : say(v)}</dd>
                      </div>
                    ))}
                  </dl>
                </div>
              ))}
            </div>
            <DocumentThumbs userId={u.id} kinds={d.documents} canSee={d.canSeePii} />
          </>
        )}
      </section>

      <section className="card" aria-labelledby="timeline-h">
        <h2 id="timeline-h">{t('timeline.heading')}</h2>
        {d.timeline.length === 0 ? (
          <p className="muted">{t('timeline.empty')}</p>
        ) : (
          <ol className="timeline">
            {d.timeline.map((e) => (
              <li key={e.key} className={`tl-${e.kind} ${e.tone ?? ''}`}>
                <span className="tl-kind">{kind(e.kind)}</span>
                <span className="tl-at">
                  <TimeAgo iso={e.at} />
                </span>
                <div className="tl-body">
                  <strong>{words(e.title)}</strong>
                  {e.detail ? <div className="muted wrap">{words(e.detail)}</div> : null}
                  {e.facts?.length ? (
                    <div className="tl-facts">
                      {e.facts.map(([k, v, href], i) => (
                        <span key={i}>
                          {t('timeline.fact', { label: words(k) })} {href ? <Link to={href}>{words(v)}</Link> : <code>{words(v)}</code>}
                        </span>
                      ))}
                    </div>
                  ) : null}
                </div>
              </li>
            ))}
          </ol>
        )}
      </section>
    </main>
  );
}

export function ErrorBoundary() {
  const { t } = useTranslation('users');
  const error = useRouteError();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  return (
    <main className="page">
      <p>
        <Link to="/users">{t('page.back')}</Link>
      </p>
      <h1>{status === 404 ? t('page.not_found_title') : status === 403 ? t('common:errors.title_403') : t('page.failed_title')}</h1>
      <p>{status === 404 ? t('page.not_found') : status === 403 ? t('common:errors.advice_403') : t('page.failed_advice')}</p>
    </main>
  );
}
