import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, isRouteErrorResponse, useLoaderData, useRouteError } from '@remix-run/react';
import { requireOperator } from '~/auth.server';
import { previewData } from '~/notifications.server';

export const meta: MetaFunction = () => [{ title: 'Message preview — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return previewData(who, new URL(request.url).searchParams);
}

export default function Preview() {
  const data = useLoaderData<typeof loader>();
  if (!data.ok) {
    return (
      <main className="page">
        <h1>Message preview</h1>
        <p className="error">{data.error}</p>
        <p>
          <Link to="/notifications/preview">Preview the templates</Link>
        </p>
      </main>
    );
  }
  const { rendered } = data;
  return (
    <main className="page wide">
      <div className="row-between">
        <h1>Message preview</h1>
        <Link to="/notifications">← Notifications</Link>
      </div>
      {data.message ? (
        <p className="muted">
          Message {data.message.id} to {data.message.address} — {data.message.status}
          {data.message.linkUrl ? <> · link {data.message.linkUrl}</> : null}
        </p>
      ) : (
        <Form method="get" className="filters card">
          <div>
            <label htmlFor="kind">Template</label>
            <select id="kind" name="kind" defaultValue={data.kind}>
              {data.kinds.map((k) => (
                <option key={k} value={k}>
                  {data.labels[k]}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="locale">Language</label>
            <select id="locale" name="locale" defaultValue={data.locale}>
              <option value="es">Español (MX/DO default)</option>
              <option value="en">English</option>
            </select>
          </div>
          <div className="filter-buttons">
            <button type="submit">Show</button>
          </div>
        </Form>
      )}
      <section className="card">
        <h2>Subject</h2>
        <p data-testid="subject">{rendered.subject}</p>
      </section>
      <section className="card">
        <h2>HTML</h2>
        {/* sandbox="" : no scripts, no forms, no navigation of this page from inside the e-mail. */}
        <iframe
          title="HTML version"
          sandbox=""
          srcDoc={rendered.html}
          style={{ width: '100%', height: 620, border: '1px solid #ddd', background: '#fff' }}
        />
      </section>
      <section className="card">
        <h2>Plain text</h2>
        <pre data-testid="text" style={{ whiteSpace: 'pre-wrap' }}>
          {rendered.text}
        </pre>
      </section>
      <section className="card">
        <h2>Short form (SMS)</h2>
        <p>{rendered.short}</p>
      </section>
    </main>
  );
}

export function ErrorBoundary() {
  const error = useRouteError();
  return (
    <main className="page">
      <h1>Message preview</h1>
      <p className="error">{isRouteErrorResponse(error) ? String(error.data || error.statusText) : 'The preview could not be rendered.'}</p>
    </main>
  );
}
