import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useNavigation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { pageTitle } from '~/i18n';
import { importLimits, stageUpload } from '~/imports.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'imports:new.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return importLimits();
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await stageUpload(request, who);
  if (r.ok) throw redirect(`/imports/${r.importId}`);
  return data({ error: r.error }, { status: r.status });
}

/** The columns the file may have, in the order of the template. */
const FIELDS = ['externalUserId', 'email', 'type', 'alias', 'country', 'sendLink'] as const;

export default function NewImport() {
  const { t } = useTranslation('imports');
  const say = useSay();
  const fmt = useFormat();
  const limits = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== 'idle';
  const size =
    limits.maxBytes >= 1024 * 1024
      ? t('new.size_mb', { mb: Math.floor(limits.maxBytes / 1024 / 1024) })
      : t('new.size_kb', { kb: Math.floor(limits.maxBytes / 1024) });
  return (
    <main className="page narrow">
      <p>
        <Link to="/imports">{t('page.back')}</Link>
      </p>
      <h1>{t('new.heading')}</h1>
      {result?.error ? (
        <div className="toast error" role="alert" data-testid="upload-error">
          {say(result.error)}
        </div>
      ) : null}
      <div className="card">
        <p>{t('new.intro')}</p>
        <ul>
          {FIELDS.map((f) => (
            <li key={f}>
              <code>{t(`csv.columns.${f}`)}</code> {t(`new.fields.${f}`)}
            </li>
          ))}
        </ul>
        <p>{t('new.other_columns')}</p>
        <p>
          {t('new.format', { size, rows: fmt.number(limits.maxRows) })}{' '}
          <a href="/imports/template.csv" download>
            {t('new.template')}
          </a>
        </p>
        <p className="muted">{t('new.dry_run_note')}</p>
        <Form method="post" encType="multipart/form-data">
          {/* The token comes before the file so it is read without waiting for the upload. */}
          <CsrfInput />
          <label htmlFor="file">{t('new.file')}</label>
          <input id="file" name="file" type="file" accept=".csv,text/csv" required />
          <p>
            <button type="submit" disabled={busy}>
              {busy ? t('new.checking') : t('new.upload')}
            </button>
          </p>
        </Form>
      </div>
    </main>
  );
}
