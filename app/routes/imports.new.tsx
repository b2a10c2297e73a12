import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, Link, useActionData, useNavigation } from '@remix-run/react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { stageUpload } from '~/imports.server';

export const meta: MetaFunction = () => [{ title: 'New import — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return null;
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await stageUpload(request, who);
  if (r.ok) throw redirect(`/imports/${r.importId}`);
  return data({ error: r.error }, { status: r.status });
}

export default function NewImport() {
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== 'idle';
  return (
    <main className="page narrow">
      <p>
        <Link to="/imports">← Imports</Link>
      </p>
      <h1>Import customers from a CSV file</h1>
      {result?.error ? (
        <div className="toast error" role="alert" data-testid="upload-error">
          {result.error}
        </div>
      ) : null}
      <div className="card">
        <p>
          One customer per row, with a header row. Columns (any order, names not case-sensitive): <code>externalUserId</code> (optional —
          generated when blank), <code>email</code> (required), <code>type</code> (INDIVIDUAL or BUSINESS, default INDIVIDUAL),{' '}
          <code>alias</code> (optional), <code>country</code> (MX or DO, required to send a link), <code>sendLink</code> (yes/no, default
          yes). Other columns are ignored.
        </p>
        <p>
          UTF-8 (with or without BOM), separated by commas or semicolons; at most 20 MB and 100,000 rows.{' '}
          <a href="/imports/template.csv" download>
            Download the template
          </a>
          .
        </p>
        <p className="muted">
          Uploading only checks the file (a dry run): nothing is sent to Capa until you review the result and start the import.
        </p>
        <Form method="post" encType="multipart/form-data">
          {/* The token comes before the file so it is read without waiting for the upload. */}
          <CsrfInput />
          <label htmlFor="file">CSV file</label>
          <input id="file" name="file" type="file" accept=".csv,text/csv" required />
          <p>
            <button type="submit" disabled={busy}>
              {busy ? 'Checking…' : 'Upload and check'}
            </button>
          </p>
        </Form>
      </div>
    </main>
  );
}
