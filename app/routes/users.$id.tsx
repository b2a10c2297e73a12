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
import { requireMutation, requireOperator } from '~/auth.server';
import { runUserAction, userPageData } from '~/users.server';
import { CsrfInput } from '~/components/csrf';
import { FlashToast, Toast } from '~/components/toast';
import { CopyButton, StateBadge, TimeAgo } from '~/components/ui';
import { newRequestId } from '~/schemas';

export const meta: MetaFunction = () => [{ title: 'Customer — KYC Desk' }];

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

export default function UserPage() {
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
    const t = setTimeout(() => setPollAfterAction(false), 60_000);
    return () => clearTimeout(t);
  }, [result]);
  usePolling(!d.final || pollAfterAction);

  const u = d.user;
  const active = d.links.find((l) => l.status === 'active');
  return (
    <main className="page wide">
      <p>
        <Link to="/users">← Users</Link>
      </p>
      <FlashToast />
      {result ? <Toast tone={result.tone} text={result.text} /> : null}
      {result?.link && d.canSeePii ? (
        <p className="card">
          Link: <code className="wrap">{result.link}</code> <CopyButton text={result.link} />
        </p>
      ) : null}

      <header className="row-between">
        <div>
          <h1>{u.alias || u.email}</h1>
          <p className="muted">
            {u.email} · {u.type} · {u.country ?? 'no country'} · created <TimeAgo iso={u.createdAt} />
          </p>
        </div>
        <div className="state-box" data-testid="kyc-state">
          <StateBadge state={u.kycState} />
        </div>
      </header>

      <div className="grid-2">
        <section className="card" aria-labelledby="identity-h">
          <h2 id="identity-h">Identity</h2>
          <dl className="facts">
            <dt>E-mail</dt>
            <dd>{u.email}</dd>
            <dt>External user id</dt>
            <dd>
              <code>{u.externalUserId}</code>
            </dd>
            <dt>Capa user id</dt>
            <dd>{u.capaUserId ? <code>{u.capaUserId}</code> : <span className="muted">not in Capa yet ({u.capaSync})</span>}</dd>
            <dt>Our id</dt>
            <dd>
              <code>{u.id}</code>
            </dd>
          </dl>
          {u.capaSync === 'failed' ? (
            <p className="error" role="alert">
              Capa refused this customer: {u.capaSyncError}
            </p>
          ) : null}
        </section>

        <section className="card" aria-labelledby="state-h">
          <h2 id="state-h">KYC state</h2>
          <dl className="facts">
            <dt>State</dt>
            <dd>
              <StateBadge state={u.kycState} /> {d.final ? null : <span className="muted">(watching for updates…)</span>}
            </dd>
            <dt>Since</dt>
            <dd>
              <TimeAgo iso={u.kycStateChangedAt} />
            </dd>
            <dt>Why</dt>
            <dd>{u.kycStateReason ?? '—'}</dd>
            <dt>Changed by</dt>
            <dd>{u.kycStateCause ?? '—'}</dd>
            <dt>Capa last confirmed</dt>
            <dd>{u.capaConfirmedAt ? <TimeAgo iso={u.capaConfirmedAt} /> : <span className="muted">never</span>}</dd>
          </dl>
          {u.unmappedResult ? <p className="warn">Capa reported “{u.unmappedResult}”, which we do not recognise. Decide by hand.</p> : null}
          {u.linkExpired ? <p className="warn">The last link expired. Generate a new one.</p> : null}
        </section>
      </div>

      {d.canAct ? (
        <section className="card actions" aria-labelledby="actions-h">
          <h2 id="actions-h">Actions</h2>
          <div className="action-row">
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="link" />
              <input type="hidden" name="requestId" value={ids.link} />
              <label htmlFor="link-country" className="inline">
                Country
              </label>{' '}
              <select id="link-country" name="country" defaultValue={u.country ?? 'MX'}>
                <option value="MX">MX</option>
                <option value="DO">DO</option>
              </select>{' '}
              <label htmlFor="link-locale" className="inline">
                E-mail in
              </label>{' '}
              <select id="link-locale" name="locale" defaultValue={d.emailLocale}>
                <option value="es">Spanish</option>
                <option value="en">English</option>
              </select>{' '}
              <label className="inline">
                <input type="checkbox" name="noEmail" /> Don’t e-mail it
              </label>{' '}
              <button type="submit" disabled={busyIntent === 'link'}>
                {busyIntent === 'link' ? 'Working…' : active ? 'Resend link (new link)' : 'Generate KYC link'}
              </button>
            </Form>
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="fetch" />
              <input type="hidden" name="requestId" value={ids.fetch} />
              <button type="submit" className="secondary" disabled={busyIntent === 'fetch'}>
                {busyIntent === 'fetch' ? 'Asking Capa…' : 'Fetch KYC details now'}
              </button>
            </Form>
            {u.capaSync !== 'created' ? (
              <Form method="post" className="inline">
                <CsrfInput />
                <input type="hidden" name="intent" value="create" />
                <input type="hidden" name="requestId" value={ids.create} />
                <button type="submit" className="secondary" disabled={busyIntent === 'create'}>
                  Send to Capa again
                </button>
              </Form>
            ) : null}
          </div>
        </section>
      ) : (
        <p className="muted">You have read-only access (viewer); personal data is masked.</p>
      )}

      <section className="card" aria-labelledby="links-h">
        <h2 id="links-h">KYC links</h2>
        {d.links.length === 0 ? (
          <p className="muted">No link yet.{d.canAct ? ' Use “Generate KYC link” above.' : ''}</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Status</th>
                <th>Created</th>
                <th>Country</th>
                <th>Link</th>
              </tr>
            </thead>
            <tbody>
              {d.links.map((l) => (
                <tr key={l.id} className={`link-${l.status}`}>
                  <td>
                    <span className={`badge link-${l.status}`}>{l.status}</span>
                  </td>
                  <td>
                    <TimeAgo iso={l.createdAt} />
                    {l.endedAt ? (
                      <div className="muted">
                        ended <TimeAgo iso={l.endedAt} />
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
                      <span className="muted">{l.url}</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section className="card" aria-labelledby="details-h">
        <h2 id="details-h">KYC details</h2>
        {!d.details ? (
          <p className="muted">
            Not fetched yet. They are fetched when Capa reports a result{d.canAct ? ', or use “Fetch KYC details now”' : ''}.
          </p>
        ) : 'error' in d.details ? (
          <p className="error">{d.details.error}</p>
        ) : (
          <>
            <p className="muted">
              Fetched <TimeAgo iso={d.details.fetchedAt} /> · result {d.details.verificationResult ?? '—'}
              {d.canSeePii ? null : ' · personal data masked for your role'}
            </p>
            <div className="grid-3">
              {d.details.sections.map((s) => (
                <div key={s.title} className={`detail-section ${s.tone ?? ''}`}>
                  <h3>{s.title}</h3>
                  <dl className="facts">
                    {s.rows.map(([k, v], i) => (
                      <div key={`${k}${i}`}>
                        <dt>{k}</dt>
                        <dd className="wrap">{v}</dd>
                      </div>
                    ))}
                  </dl>
                </div>
              ))}
            </div>
          </>
        )}
      </section>

      <section className="card" aria-labelledby="timeline-h">
        <h2 id="timeline-h">Timeline</h2>
        {d.timeline.length === 0 ? (
          <p className="muted">Nothing has happened yet.</p>
        ) : (
          <ol className="timeline">
            {d.timeline.map((e) => (
              <li key={e.key} className={`tl-${e.kind} ${e.tone ?? ''}`}>
                <span className="tl-kind">{e.kind}</span>
                <span className="tl-at">
                  <TimeAgo iso={e.at} />
                </span>
                <div className="tl-body">
                  <strong>{e.title}</strong>
                  {e.detail ? <div className="muted wrap">{e.detail}</div> : null}
                  {e.facts?.length ? (
                    <div className="tl-facts">
                      {e.facts.map(([k, v, href]) => (
                        <span key={k}>
                          {k}: {href ? <Link to={href}>{v}</Link> : <code>{v}</code>}
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
  const error = useRouteError();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  return (
    <main className="page">
      <p>
        <Link to="/users">← Users</Link>
      </p>
      <h1>{status === 404 ? 'Customer not found' : status === 403 ? 'Not allowed' : 'This customer page failed to load'}</h1>
      <p>
        {isRouteErrorResponse(error) && typeof error.data === 'string'
          ? error.data
          : 'Reload the page in a moment. If it keeps failing, tell the on-call engineer the customer id from the address bar.'}
      </p>
    </main>
  );
}
