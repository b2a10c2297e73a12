import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData } from '@remix-run/react';
import { createColumnHelper, flexRender, getCoreRowModel, useReactTable } from '@tanstack/react-table';
import { requireOperator } from '~/auth.server';
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
  col.accessor('status', { header: 'Status', cell: (c) => <span className={`badge import-${c.getValue()}`}>{c.getValue()}</span> }),
  col.accessor('totalRows', { header: 'Rows' }),
  col.accessor('validRows', { header: 'Valid' }),
  col.accessor('invalidRows', { header: 'Invalid' }),
  col.accessor('createdAt', { header: 'Uploaded', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
  col.accessor('finishedAt', { header: 'Finished', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
];

export default function Imports() {
  const d = useLoaderData<typeof loader>();
  const table = useReactTable({ data: d.rows, columns, getCoreRowModel: getCoreRowModel(), manualPagination: true, rowCount: d.total });
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
      {d.rows.length === 0 ? (
        <p className="muted">No imports yet.</p>
      ) : (
        <table>
          <thead>
            {table.getHeaderGroups().map((g) => (
              <tr key={g.id}>
                {g.headers.map((h) => (
                  <th key={h.id}>{flexRender(h.column.columnDef.header, h.getContext())}</th>
                ))}
              </tr>
            ))}
          </thead>
          <tbody>
            {table.getRowModel().rows.map((r) => (
              <tr key={r.id}>
                {r.getVisibleCells().map((c) => (
                  <td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages > 1 ? (
        <p>
          {d.page > 1 ? <Link to={`?page=${d.page - 1}`}>← Newer</Link> : null} Page {d.page} of {pages}{' '}
          {d.page < pages ? <Link to={`?page=${d.page + 1}`}>Older →</Link> : null}
        </p>
      ) : null}
    </main>
  );
}
