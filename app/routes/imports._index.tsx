import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { requireOperator } from '~/auth.server';
import { ServerTable } from '~/components/server-table';
import { TimeAgo } from '~/components/ui';
import { importsListData } from '~/imports.server';

export const meta: MetaFunction = () => [{ title: 'Imports — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return importsListData(new URL(request.url).searchParams);
}

type Row = Awaited<ReturnType<typeof loader>>['rows'][number];
const col = createColumnHelper<Row>();
const columns = [
  col.accessor('fileName', { header: 'File', cell: (c) => <Link to={`/imports/${c.row.original.id}`}>{c.getValue()}</Link> }),
  col.accessor('status', {
    header: 'Status',
    cell: (c) => (
      <>
        <span className={`badge import-${c.getValue()}`}>{c.getValue()}</span>
        {c.row.original.failedEmails > 0 ? (
          <>
            {' '}
            <Link className="badge email-failed" to={`/imports/${c.row.original.id}?rows=email_failed&page=1`} data-testid="failed-emails">
              {c.row.original.failedEmails} e-mail{c.row.original.failedEmails === 1 ? '' : 's'} failed
            </Link>
          </>
        ) : null}
      </>
    ),
  }),
  col.accessor('totalRows', { header: 'Rows' }),
  col.accessor('validRows', { header: 'Valid' }),
  col.accessor('invalidRows', { header: 'Invalid' }),
  col.accessor('createdAt', { header: 'Uploaded', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
  col.accessor('finishedAt', { header: 'Finished', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
];

export default function Imports() {
  const d = useLoaderData<typeof loader>();
  const pages = Math.max(1, Math.ceil(d.total / d.pageSize));
  return (
    <main className="page">
      <h1>Imports</h1>
      <p>
        <Link className="button" to="/imports/new">
          New import
        </Link>{' '}
        <a href="/imports/template.csv" download>
          Download the CSV template
        </a>
      </p>
      <ServerTable
        rows={d.rows}
        columns={columns}
        page={d.page}
        pageSize={d.pageSize}
        pageCount={pages}
        empty={<p className="muted">No imports yet.</p>}
      />
      {pages > 1 ? (
        <p>
          {d.page > 1 ? <Link to={`?page=${d.page - 1}`}>← Newer</Link> : null} Page {d.page} of {pages}{' '}
          {d.page < pages ? <Link to={`?page=${d.page + 1}`}>Older →</Link> : null}
        </p>
      ) : null}
    </main>
  );
}
