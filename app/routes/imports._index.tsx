import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Link, useLoaderData } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { requireOperator } from '~/auth.server';
import { useFormat } from '~/components/format';
import { ServerTable } from '~/components/server-table';
import { TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { importsListData } from '~/imports.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'imports:list.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return importsListData(new URL(request.url).searchParams);
}

type Row = Awaited<ReturnType<typeof loader>>['rows'][number];
const col = createColumnHelper<Row>();

export default function Imports() {
  const { t } = useTranslation('imports');
  const fmt = useFormat();
  const d = useLoaderData<typeof loader>();
  const pages = Math.max(1, Math.ceil(d.total / d.pageSize));
  const columns = useMemo(
    () => [
      col.accessor('fileName', {
        header: t('list.columns.file'),
        cell: (c) => <Link to={`/imports/${c.row.original.id}`}>{c.getValue()}</Link>,
      }),
      col.accessor('status', {
        header: t('list.columns.status'),
        cell: (c) => (
          <>
            <span className={`badge import-${c.getValue()}`} title={c.getValue()}>
              {t(`statuses.${c.getValue()}`)}
            </span>
            {c.row.original.failedEmails > 0 ? (
              <>
                {' '}
                <Link
                  className="badge email-failed"
                  to={`/imports/${c.row.original.id}?rows=email_failed&page=1`}
                  data-testid="failed-emails"
                >
                  {t('list.failed_emails', { count: c.row.original.failedEmails })}
                </Link>
              </>
            ) : null}
          </>
        ),
      }),
      col.accessor('totalRows', { header: t('list.columns.rows'), cell: (c) => fmt.number(c.getValue()) }),
      col.accessor('validRows', { header: t('list.columns.valid'), cell: (c) => fmt.number(c.getValue()) }),
      col.accessor('invalidRows', { header: t('list.columns.invalid'), cell: (c) => fmt.number(c.getValue()) }),
      col.accessor('createdAt', { header: t('list.columns.uploaded'), cell: (c) => <TimeAgo iso={c.getValue()} /> }),
      col.accessor('finishedAt', { header: t('list.columns.finished'), cell: (c) => <TimeAgo iso={c.getValue()} /> }),
    ],
    [t, fmt],
  );
  return (
    <main className="page">
      <h1>{t('list.heading')}</h1>
      <p>
        <Link className="button" to="/imports/new">
          {t('list.new')}
        </Link>{' '}
        <a href="/imports/template.csv" download>
          {t('list.template')}
        </a>
      </p>
      <ServerTable
        rows={d.rows}
        columns={columns}
        page={d.page}
        pageSize={d.pageSize}
        pageCount={pages}
        empty={<p className="muted">{t('list.empty')}</p>}
      />
      {pages > 1 ? (
        <p>
          {d.page > 1 ? <Link to={`?page=${d.page - 1}`}>{t('list.newer')}</Link> : null}{' '}
          {t('common:pager.page_of', { page: d.page, total: pages })}{' '}
          {d.page < pages ? <Link to={`?page=${d.page + 1}`}>{t('list.older')}</Link> : null}
        </p>
      ) : null}
    </main>
  );
}
