import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useLoaderData, useRouteError } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireOperator } from '~/auth.server';
import { routeErrorMessage } from '~/components/route-error';
import { pageTitle } from '~/i18n';
import { HIDDEN_FOR_ROLE } from '~/pii';
import { previewData } from '~/notifications.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'notifications:preview.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return previewData(who, new URL(request.url).searchParams);
}

export default function Preview() {
  const { t } = useTranslation('notifications');
  const data = useLoaderData<typeof loader>();
  if (!data.ok) {
    return (
      <main className="page">
        <h1>{t('preview.heading')}</h1>
        <p className="error">{t(data.error)}</p>
        <p>
          <Link to="/notifications/preview">{t('preview.preview_templates')}</Link>
        </p>
      </main>
    );
  }
  const { rendered } = data;
  return (
    <main className="page wide">
      <div className="row-between">
        <h1>{t('preview.heading')}</h1>
        <Link to="/notifications">{t('preview.back')}</Link>
      </div>
      {data.message ? (
        <p className="muted">
          {t('preview.message_line', { id: data.message.id, address: data.message.address, status: t(`statuses.${data.message.status}`) })}
          {data.message.linkUrl
            ? t('preview.message_link', { link: data.message.linkUrl === HIDDEN_FOR_ROLE ? t('list.link_hidden') : data.message.linkUrl })
            : null}
        </p>
      ) : (
        <Form method="get" className="filters card">
          <div>
            <label htmlFor="kind">{t('preview.template')}</label>
            <select id="kind" name="kind" defaultValue={data.kind}>
              {data.kinds.map((k) => (
                <option key={k} value={k}>
                  {t(`kinds.${k}`)}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="locale">{t('preview.language')}</label>
            <select id="locale" name="locale" defaultValue={data.locale}>
              <option value="es">{t('preview.spanish_default')}</option>
              <option value="en">{t('common:languages.en')}</option>
            </select>
          </div>
          <div className="filter-buttons">
            <button type="submit">{t('preview.show')}</button>
          </div>
        </Form>
      )}
      {/* The message itself is in the customer's language, whatever the console's. */}
      <section className="card">
        <h2>{t('preview.subject')}</h2>
        <p data-testid="subject" lang={data.locale}>
          {rendered.subject}
        </p>
      </section>
      <section className="card">
        <h2>{t('preview.html')}</h2>
        {/* sandbox="" : no scripts, no forms, no navigation of this page from inside the e-mail. */}
        <iframe
          title={t('preview.html_title')}
          sandbox=""
          srcDoc={rendered.html}
          style={{ width: '100%', height: 620, border: '1px solid #ddd', background: '#fff' }}
        />
      </section>
      <section className="card">
        <h2>{t('preview.text')}</h2>
        <pre data-testid="text" lang={data.locale} style={{ whiteSpace: 'pre-wrap' }}>
          {rendered.text}
        </pre>
      </section>
      <section className="card">
        <h2>{t('preview.short')}</h2>
        <p lang={data.locale}>{rendered.short}</p>
      </section>
    </main>
  );
}

export function ErrorBoundary() {
  const { t } = useTranslation('notifications');
  const error = useRouteError();
  return (
    <main className="page">
      <h1>{t('preview.heading')}</h1>
      <p className="error">{routeErrorMessage(error, t('preview.render_failed'), t)}</p>
    </main>
  );
}
