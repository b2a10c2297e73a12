import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { AlertsForbidden, alertsAction, alertsPageData, type AlertView } from '~/alerts.server';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { Toast } from '~/components/toast';
import { TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'alerts:page_title') }];

/** Viewers see alerts; compliance acknowledges and silences; admins change thresholds and recipients. */
export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return alertsPageData(request, who, new URL(request.url).searchParams);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  try {
    return await alertsAction(request, who, who.form);
  } catch (err) {
    if (err instanceof AlertsForbidden) throw new Response('alerts:errors.admin_only', { status: 403 });
    throw err;
  }
}

/** The two delays every rule has, as the thresholds form asks for them. */
const DURATION_FIELDS = [
  { name: 'forSeconds', label: 'rules.for_seconds' },
  { name: 'resolveSeconds', label: 'rules.resolve_seconds' },
] as const;

type Data = ReturnType<typeof useLoaderData<typeof loader>>;
type Outcome = ReturnType<typeof useActionData<typeof action>>;

function SeverityBadge({ severity }: { severity: string }) {
  const { t } = useTranslation('alerts');
  return <span className={`badge alert-${severity}`}>{t(`severity.${severity}`)}</span>;
}

function StateBadge({ state }: { state: string }) {
  const { t } = useTranslation('alerts');
  return <span className={`badge alert-state-${state}`}>{t(`states.${state}`)}</span>;
}

function FieldError({ result, form, field }: { result: Outcome; form: string; field: string }) {
  const { t } = useTranslation('alerts');
  if (!result || !('errors' in result) || result.form !== form) return null;
  const code = result.errors?.[field];
  return code ? (
    <div className="error" role="alert">
      {t(code)}
    </div>
  ) : null;
}

function SilenceForm({
  ruleId,
  durations,
  result,
  busy,
}: {
  ruleId: string;
  durations: readonly number[];
  result: Outcome;
  busy: boolean;
}) {
  const { t } = useTranslation('alerts');
  const form = 'silence';
  return (
    <details>
      <summary>{t('silence.open')}</summary>
      <Form method="post" className="stack">
        <CsrfInput />
        <input type="hidden" name="intent" value="silence" />
        <input type="hidden" name="ruleId" value={ruleId} />
        <label htmlFor={`silence-min-${ruleId}`}>{t('silence.duration')}</label>
        <select id={`silence-min-${ruleId}`} name="minutes" defaultValue="60">
          {durations.map((m) => (
            <option key={m} value={m}>
              {t(`silence.minutes.${m}`)}
            </option>
          ))}
        </select>
        <label htmlFor={`silence-reason-${ruleId}`}>{t('silence.reason')}</label>
        <input
          id={`silence-reason-${ruleId}`}
          name="reason"
          required
          minLength={3}
          maxLength={500}
          placeholder={t('silence.placeholder')}
        />
        <FieldError result={result} form={form} field="reason" />
        <div>
          <button type="submit" className="secondary" disabled={busy}>
            {t('silence.button')}
          </button>
        </div>
      </Form>
    </details>
  );
}

function AlertCard({ a, d, result, busy }: { a: AlertView; d: Data; result: Outcome; busy: boolean }) {
  const { t } = useTranslation('alerts');
  const fmt = useFormat();
  return (
    <article
      className={`card alert-card alert-${a.severity} alert-state-${a.state}`}
      id={`alert-${a.id}`}
      data-rule={a.ruleId}
      data-state={a.state}
    >
      <header className="alert-head">
        <SeverityBadge severity={a.severity} /> <StateBadge state={a.state} /> <strong>{a.title}</strong> <code>{a.ruleId}</code>
      </header>
      <p>{a.summary}</p>
      <dl className="facts">
        <div>
          <dt>{a.firedAt ? t('alert.firing_since') : t('alert.condition_since')}</dt>
          <dd>
            <TimeAgo iso={a.firedAt ?? a.pendingSince} />
          </dd>
        </div>
        <div>
          <dt>{t('alert.value')}</dt>
          <dd>
            {fmt.number(a.value)}
            {a.peakValue !== a.value ? (
              <span className="muted">
                {' '}
                · {t('alert.peak')} {fmt.number(a.peakValue)}
              </span>
            ) : null}
          </dd>
        </div>
      </dl>
      {a.state === 'pending' && a.fireAt ? <p className="muted">{t('alert.fires_at', { at: fmt.dateTime(a.fireAt) })}</p> : null}
      {a.acknowledgedAt ? (
        <p>{t('alert.acknowledged', { by: a.acknowledgedBy ?? '—', at: fmt.dateTime(a.acknowledgedAt), reason: a.ackReason ?? '' })}</p>
      ) : null}
      {a.resolvingSince && a.resolveAt && a.state !== 'resolved' ? (
        <p className="muted">{t('alert.resolving', { since: fmt.relative(a.resolvingSince), at: fmt.dateTime(a.resolveAt) })}</p>
      ) : null}
      {a.resolvedAt ? (
        <p>{t(a.resolvedReason === 'rule_disabled' ? 'alert.resolved_disabled' : 'alert.resolved', { at: fmt.dateTime(a.resolvedAt) })}</p>
      ) : null}
      {a.silence && !a.notifiedAt ? (
        <p className="toast" data-testid="silenced">
          {t('alert.silenced', { by: a.silence.by, until: fmt.dateTime(a.silence.endsAt), reason: a.silence.reason })}
        </p>
      ) : null}
      {a.state !== 'pending' ? (
        <div>
          <strong>{t('alert.notified')}</strong>{' '}
          {a.messages.length ? (
            <ul className="inline-list" data-testid="recipients">
              {a.messages.map((m) => (
                <li key={m.id} title={m.problem ?? undefined}>
                  {t(`alert.channel.${m.channel}`)} <code>{m.address}</code> · {t(`alert.message_kind.${m.kind}`)} ·{' '}
                  <span className={m.status === 'failed' ? 'error' : ''}>{t(`alert.message_status.${m.status}`)}</span>
                  {m.attempts > 1 ? <span className="muted"> ({t('alert.attempts', { count: m.attempts })})</span> : null}
                </li>
              ))}
            </ul>
          ) : (
            <span className="muted">{a.notifiedAt ? t('alert.nobody') : t('alert.not_notified')}</span>
          )}
        </div>
      ) : null}
      <p>
        <Link to={a.page}>{t('alert.explain')}</Link> · <a href={`/alerts?alert=${a.id}#alert-${a.id}`}>{t('alert.link')}</a>
      </p>
      {d.canAct && a.state === 'firing' ? (
        <Form method="post" className="stack">
          <CsrfInput />
          <input type="hidden" name="intent" value="acknowledge" />
          <input type="hidden" name="alertId" value={a.id} />
          <label htmlFor={`ack-${a.id}`}>{t('ack.reason')}</label>
          <input id={`ack-${a.id}`} name="reason" required minLength={3} maxLength={500} placeholder={t('ack.placeholder')} />
          <FieldError result={result} form="acknowledge" field="reason" />
          <div>
            <button type="submit" disabled={busy}>
              {t('ack.button')}
            </button>
          </div>
        </Form>
      ) : null}
      {d.canAct && a.state !== 'resolved' && !a.silence?.active ? (
        <SilenceForm ruleId={a.ruleId} durations={d.silenceDurations} result={result} busy={busy} />
      ) : null}
      {a.events.length ? (
        <details>
          <summary>{t('alert.history')}</summary>
          <ol className="timeline">
            {a.events.map((e) => (
              <li key={e.id}>
                <TimeAgo iso={e.at} />{' '}
                {e.kind === 'notified'
                  ? e.recipients
                    ? t('events.notified', { count: e.recipients, message: t(`alert.message_kind.${e.message ?? 'alert_firing'}`) })
                    : t('events.notified_none', { message: t(`alert.message_kind.${e.message ?? 'alert_firing'}`) })
                  : t(`events.${e.kind}`, { reason: e.reason ?? '', actor: e.actor })}
              </li>
            ))}
          </ol>
        </details>
      ) : null}
    </article>
  );
}

export default function AlertsPage() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const { t } = useTranslation('alerts');
  const fmt = useFormat();
  const say = useSay();
  const busy = useNavigation().state === 'submitting';
  const errorsFor = (form: string) => (result && 'errors' in result && result.form === form ? (result.errors ?? {}) : {});

  return (
    <main className="page wide">
      <h1>{t('heading')}</h1>
      <p className="muted">{t('intro', { every: fmt.duration(d.everySeconds * 1000) })}</p>
      {result ? <Toast tone={result.tone} text={say(result)} /> : null}
      <p data-testid="alerts-summary">
        {d.counts.firing || d.counts.acknowledged ? (
          <>
            <strong>{t('summary.firing', { count: d.counts.firing })}</strong> ·{' '}
            {t('summary.acknowledged', { count: d.counts.acknowledged })}
          </>
        ) : (
          t('summary.all_clear')
        )}
      </p>

      {d.selected ? (
        <section aria-labelledby="selected-h">
          <h2 id="selected-h">{t('open.selected')}</h2>
          <AlertCard a={d.selected} d={d} result={result} busy={busy} />
        </section>
      ) : null}

      <section aria-labelledby="open-h">
        <h2 id="open-h">{t('open.heading')}</h2>
        {d.open.length ? (
          d.open.map((a) => <AlertCard key={a.id} a={a} d={d} result={result} busy={busy} />)
        ) : (
          <p className="muted">{t('open.empty')}</p>
        )}
      </section>

      <section className="card" aria-labelledby="silences-h">
        <h2 id="silences-h">{t('silence.heading')}</h2>
        <p className="muted">{t('silence.intro')}</p>
        {d.silences.length ? (
          <table data-testid="silences">
            <thead>
              <tr>
                <th>{t('silence.rule')}</th>
                <th>{t('silence.why')}</th>
                <th>{t('silence.by')}</th>
                <th>{t('silence.until')}</th>
                <th>{t('silence.status')}</th>
              </tr>
            </thead>
            <tbody>
              {d.silences.map((s) => (
                <tr key={s.id}>
                  <td>
                    <code>{s.ruleId}</code>
                  </td>
                  <td>{s.reason}</td>
                  <td>{s.by}</td>
                  <td>{fmt.dateTime(s.endsAt)}</td>
                  <td>
                    {s.active
                      ? t('silence.active')
                      : s.endedEarly
                        ? t('silence.ended_early', { by: s.endedBy ?? '—' })
                        : t('silence.ended')}
                    {s.active && d.canAct ? (
                      <Form method="post" className="inline">
                        <CsrfInput />
                        <input type="hidden" name="intent" value="end-silence" />
                        <input type="hidden" name="silenceId" value={s.id} />{' '}
                        <button type="submit" className="secondary small" disabled={busy}>
                          {t('silence.end')}
                        </button>
                      </Form>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{t('silence.empty')}</p>
        )}
      </section>

      <section className="card" aria-labelledby="rules-h">
        <h2 id="rules-h">{t('rules.heading')}</h2>
        <p className="muted">{t('rules.intro')}</p>
        <table data-testid="rules">
          <thead>
            <tr>
              <th>{t('rules.rule')}</th>
              <th>{t('rules.severity')}</th>
              <th>{t('rules.now')}</th>
              <th>{t('rules.thresholds')}</th>
            </tr>
          </thead>
          <tbody>
            {d.rules.map((r) => {
              const errors = errorsFor(`rule:${r.id}`);
              return (
                <tr key={r.id} id={`rule-${r.id}`} data-rule={r.id}>
                  <td>
                    <strong>{r.title}</strong>
                    <div>
                      <code>{r.id}</code> {r.enabled ? null : <span className="badge">{t('rules.off')}</span>}
                    </div>
                    {r.evaluator === 'web' ? <div className="muted small">{t('rules.web')}</div> : null}
                    {r.silencedUntil ? (
                      <div className="muted small">{t('rules.silenced_until', { at: fmt.dateTime(r.silencedUntil) })}</div>
                    ) : null}
                    {r.changedByAdmin ? <div className="muted small">{t('rules.changed')}</div> : null}
                    <Link to={r.page} className="small">
                      {t('alert.explain')}
                    </Link>
                  </td>
                  <td>
                    <SeverityBadge severity={r.severity} />
                  </td>
                  <td>
                    {r.error ? (
                      // The error is what the database or the rule said: shown as recorded, like a log line.
                      <span className="error">
                        {t('rules.error')} <code>{r.error}</code>
                      </span>
                    ) : r.now && r.active ? (
                      // While the condition holds, what it sees; otherwise the summary would only count zeros.
                      <>
                        <span className="error">{t('rules.holds')}</span> · {r.now}
                      </>
                    ) : !r.enabled ? (
                      <span className="muted">{t('rules.off')}</span>
                    ) : r.evaluatedAt ? (
                      <span>{t('rules.clear')}</span>
                    ) : (
                      <span className="muted">{t('rules.never')}</span>
                    )}
                    {r.evaluatedAt ? (
                      <div className="muted small">
                        <TimeAgo iso={r.evaluatedAt} />
                      </div>
                    ) : null}
                  </td>
                  <td>
                    <ul className="plain small">
                      {r.params.map((p) => (
                        <li key={p.name}>
                          {t(`rules.params.${p.name}`)}: <strong>{fmt.number(p.value)}</strong>
                        </li>
                      ))}
                      <li>{t('rules.for', { duration: fmt.duration(r.forSeconds * 1000) })}</li>
                      <li>{t('rules.resolve', { duration: fmt.duration(r.resolveSeconds * 1000) })}</li>
                    </ul>
                    {d.canAct ? <SilenceForm ruleId={r.id} durations={d.silenceDurations} result={result} busy={busy} /> : null}
                    {d.canEdit ? (
                      <details open={Object.keys(errors).length > 0}>
                        <summary>{t('rules.edit')}</summary>
                        <Form method="post" className="stack">
                          <CsrfInput />
                          <input type="hidden" name="ruleId" value={r.id} />
                          <label className="inline">
                            <input type="checkbox" name="enabled" defaultChecked={r.enabled} /> {t('rules.enabled')}
                          </label>
                          <label htmlFor={`sev-${r.id}`}>{t('rules.severity')}</label>
                          <select id={`sev-${r.id}`} name="severity" defaultValue={r.severity}>
                            <option value="critical">{t('severity.critical')}</option>
                            <option value="warning">{t('severity.warning')}</option>
                          </select>
                          {DURATION_FIELDS.map(({ name, label }) => (
                            <div key={name}>
                              <label htmlFor={`${name}-${r.id}`}>{t(label)}</label>
                              <input
                                id={`${name}-${r.id}`}
                                name={name}
                                type="number"
                                min={0}
                                step={1}
                                defaultValue={r[name]}
                                required
                              />{' '}
                              <span className="muted small">{t('rules.default', { value: fmt.number(r.base[name]) })}</span>
                              {errors[name] ? <div className="error">{t(errors[name]!)}</div> : null}
                            </div>
                          ))}
                          {r.params.map((p) => (
                            <div key={p.name}>
                              <label htmlFor={`p-${p.name}-${r.id}`}>{t(`rules.params.${p.name}`)}</label>
                              <input
                                id={`p-${p.name}-${r.id}`}
                                name={`p.${p.name}`}
                                type="number"
                                min={p.min}
                                max={p.max}
                                step="any"
                                defaultValue={p.value}
                                required
                              />{' '}
                              <span className="muted small">{t('rules.default', { value: fmt.number(p.base) })}</span>
                              {errors[`p.${p.name}`] ? <div className="error">{t(errors[`p.${p.name}`]!)}</div> : null}
                            </div>
                          ))}
                          <div className="actions">
                            <button type="submit" name="intent" value="save-rule" disabled={busy}>
                              {t('rules.save')}
                            </button>{' '}
                            {r.changedByAdmin ? (
                              <button type="submit" name="intent" value="reset-rule" className="secondary" disabled={busy} formNoValidate>
                                {t('rules.reset')}
                              </button>
                            ) : null}
                          </div>
                        </Form>
                      </details>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>

      <section className="card" aria-labelledby="recipients-h">
        <h2 id="recipients-h">{t('recipients.heading')}</h2>
        <p className="muted">{t('recipients.intro')}</p>
        <dl className="facts" data-testid="routing">
          <div>
            <dt>{t('recipients.critical')}</dt>
            <dd>{d.routing.critical.length ? d.routing.critical.join(', ') : <span className="muted">{t('recipients.nobody')}</span>}</dd>
          </div>
          <div>
            <dt>{t('recipients.warning')}</dt>
            <dd>{d.routing.warning.length ? d.routing.warning.join(', ') : <span className="muted">{t('recipients.nobody')}</span>}</dd>
          </div>
          <div>
            <dt>{t('recipients.webhook')}</dt>
            <dd>
              {d.webhook
                ? t('recipients.webhook_to', { address: d.webhook.address, format: d.webhook.format })
                : t('recipients.webhook_none')}
            </dd>
          </div>
        </dl>
        <p className="muted small">
          {d.routing.fromEnv
            ? t('recipients.from_env')
            : t('recipients.changed', { at: d.routing.setAt ? fmt.dateTime(d.routing.setAt) : '' })}
        </p>
        {d.canEdit ? (
          <Form method="post" className="stack">
            <CsrfInput />
            {(['critical', 'warning'] as const).map((sev) => (
              <div key={sev}>
                <label htmlFor={`to-${sev}`}>{t(`recipients.${sev}`)}</label>
                <textarea id={`to-${sev}`} name={sev} rows={2} defaultValue={d.routing[sev].join(', ')} />
                {errorsFor('recipients')[sev] ? <div className="error">{t(errorsFor('recipients')[sev]!)}</div> : null}
              </div>
            ))}
            <p className="muted small">{t('recipients.help')}</p>
            <div className="actions">
              <button type="submit" name="intent" value="save-recipients" disabled={busy}>
                {t('recipients.save')}
              </button>{' '}
              {!d.routing.fromEnv ? (
                <button type="submit" name="intent" value="reset-recipients" className="secondary" disabled={busy}>
                  {t('recipients.reset')}
                </button>
              ) : null}
            </div>
          </Form>
        ) : null}
      </section>

      <section className="card" aria-labelledby="history-h">
        <h2 id="history-h">{t('history.heading')}</h2>
        <Form method="get" className="inline">
          <label htmlFor="history-rule" className="inline">
            {t('history.rule')}
          </label>{' '}
          <select id="history-rule" name="rule" defaultValue={d.history.rule ?? ''}>
            <option value="">{t('history.all_rules')}</option>
            {d.rules.map((r) => (
              <option key={r.id} value={r.id}>
                {r.id}
              </option>
            ))}
          </select>{' '}
          <button type="submit" className="secondary small">
            {t('history.show')}
          </button>
        </Form>
        {d.history.rows.length ? (
          <table data-testid="history">
            <thead>
              <tr>
                <th>{t('history.rule')}</th>
                <th>{t('history.fired')}</th>
                <th>{t('history.resolved')}</th>
                <th>{t('history.lasted')}</th>
                <th>{t('history.peak')}</th>
                <th>{t('history.acknowledged_by')}</th>
              </tr>
            </thead>
            <tbody>
              {d.history.rows.map((a) => (
                <tr key={a.id} data-state={a.state}>
                  <td>
                    <SeverityBadge severity={a.severity} /> {a.title} <code>{a.ruleId}</code>
                    <div>
                      <a href={`/alerts?alert=${a.id}#alert-${a.id}`} className="small">
                        {t('history.details')}
                      </a>
                    </div>
                  </td>
                  <td>{a.firedAt ? fmt.dateTime(a.firedAt) : '—'}</td>
                  <td>{a.resolvedAt ? fmt.dateTime(a.resolvedAt) : <StateBadge state={a.state} />}</td>
                  <td>
                    {a.firedAt && a.resolvedAt ? (
                      fmt.duration(Date.parse(a.resolvedAt) - Date.parse(a.firedAt))
                    ) : (
                      <span className="muted">{t('history.still_open')}</span>
                    )}
                  </td>
                  <td>{fmt.number(a.peakValue)}</td>
                  <td>{a.acknowledgedBy ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{t('history.empty')}</p>
        )}
        {d.history.pages > 1 ? (
          <p className="pager">
            {d.history.page > 1 ? (
              <Link
                to={`?${new URLSearchParams({ ...(d.history.rule ? { rule: d.history.rule } : {}), page: String(d.history.page - 1) })}`}
              >
                {t('history.previous')}
              </Link>
            ) : null}{' '}
            {t('history.page', { page: d.history.page, pages: d.history.pages })}{' '}
            {d.history.page < d.history.pages ? (
              <Link
                to={`?${new URLSearchParams({ ...(d.history.rule ? { rule: d.history.rule } : {}), page: String(d.history.page + 1) })}`}
              >
                {t('history.next')}
              </Link>
            ) : null}
          </p>
        ) : null}
      </section>
    </main>
  );
}
