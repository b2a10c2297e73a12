import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { ExportCsvLink } from '~/components/export-link';
import { requireOperator } from '~/auth.server';
import { usersListData } from '~/users.server';
import { useRootData } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { StateBadge, TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'users:list.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return usersListData(who, new URL(request.url).searchParams);
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];

/** Mirrors SEARCH_COUNT_CAP in db/repositories/users-list.ts (not imported: server-only module). */
const SEARCH_CAP = 1000;
const STATES = ['NOT_STARTED', 'LINK_ISSUED', 'IN_PROGRESS', 'VERIFIED', 'REJECTED', 'REVIEW_NEEDED'] as const;
const col = createColumnHelper<Row>();

export default function UsersList() {
  const { t } = useTranslation('users');
  const fmt = useFormat();
  const data = useLoaderData<typeof loader>();
  const { operator } = useRootData();
  const location = useLocation();
  const navigation = useNavigation();
  const { params } = data;

  const columns = useMemo(
    () => [
      col.accessor('email', {
        header: t('columns.customer'),
        cell: (c) => (
          <>
            <Link to={`/users/${c.row.original.id}`}>{c.getValue()}</Link>
            {c.row.original.alias ? <div className="muted">{c.row.original.alias}</div> : null}
          </>
        ),
      }),
      col.accessor('externalUserId', { header: t('columns.external_id'), cell: (c) => <code>{c.getValue()}</code> }),
      col.accessor('kycState', {
        header: t('columns.kyc_state'),
        cell: (c) => (
          <>
            <StateBadge state={c.getValue()} />
            {c.row.original.linkExpired ? <span className="muted"> {t('list.link_expired')}</span> : null}
            {c.row.original.capaSync === 'failed' ? <span className="error"> {t('list.not_in_capa')}</span> : null}
          </>
        ),
      }),
      col.accessor('kycStateChangedAt', { header: t('columns.state_since'), cell: (c) => <TimeAgo iso={c.getValue()} /> }),
      col.accessor('type', { header: t('columns.type'), cell: (c) => <span title={c.getValue()}>{t(`types.${c.getValue()}`)}</span> }),
      col.accessor('country', { header: t('columns.country'), cell: (c) => c.getValue() ?? '—' }),
      col.accessor('assigneeName', {
        header: t('columns.assignee'),
        enableSorting: false,
        cell: (c) => c.getValue() ?? <span className="muted">—</span>,
      }),
      col.accessor('createdAt', { header: t('columns.created'), cell: (c) => <TimeAgo iso={c.getValue()} /> }),
    ],
    [t],
  );

  const sortable = new Set(['email', 'externalUserId', 'kycState', 'kycStateChangedAt', 'type', 'country', 'createdAt']);
  const filtered = Boolean(
    params.q || params.type || params.country || params.from || params.to || params.assignee || (params.states ?? []).length,
  );
  const busy = navigation.state === 'loading' && navigation.location?.pathname === '/users';

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>{t('list.heading')}</h1>
        <ExportCsvLink path="/users/export.csv" />
        {operator && operator.role !== 'viewer' ? (
          <Link to="/users/new" className="button">
            {t('list.new')}
          </Link>
        ) : null}
      </div>

      <nav className="chips" aria-label={t('list.filter_by_state')}>
        <Link to={withParams(location.search, { state: null })} className={`chip ${(params.states ?? []).length === 0 ? 'active' : ''}`}>
          {t('list.all')}{' '}
          <strong>
            {data.countsCapped ? `${fmt.number(SEARCH_CAP)}+` : fmt.number(Object.values(data.countsByState).reduce((a, b) => a + b, 0))}
          </strong>
        </Link>
        {STATES.map((s) => (
          <Link
            key={s}
            to={withParams(location.search, { state: s })}
            className={`chip ${params.states?.length === 1 && params.states[0] === s ? 'active' : ''}`}
          >
            <StateBadge state={s} /> {data.countsCapped ? null : <strong>{fmt.number(data.countsByState[s])}</strong>}
          </Link>
        ))}
      </nav>

      <Form method="get" className="filters card" role="search">
        {(params.states ?? []).map((s) => (
          <input key={s} type="hidden" name="state" value={s} />
        ))}
        <input type="hidden" name="sort" value={params.sort} />
        <input type="hidden" name="dir" value={params.dir} />
        <div>
          <label htmlFor="q">{t('filters.search')}</label>
          <input id="q" name="q" type="search" defaultValue={params.q ?? ''} placeholder={t('filters.search_placeholder')} />
        </div>
        <div>
          <label htmlFor="type">{t('filters.type')}</label>
          <select id="type" name="type" defaultValue={params.type ?? ''}>
            <option value="">{t('filters.any')}</option>
            <option value="INDIVIDUAL">{t('types.INDIVIDUAL')}</option>
            <option value="BUSINESS">{t('types.BUSINESS')}</option>
          </select>
        </div>
        <div>
          <label htmlFor="country">{t('filters.country')}</label>
          <select id="country" name="country" defaultValue={params.country ?? ''}>
            <option value="">{t('filters.any')}</option>
            <option value="MX">{t('countries.MX')}</option>
            <option value="DO">{t('countries.DO')}</option>
          </select>
        </div>
        <div>
          <label htmlFor="from">{t('filters.created_from')}</label>
          <input id="from" name="from" type="date" defaultValue={params.from} />
        </div>
        <div>
          <label htmlFor="to">{t('filters.created_to')}</label>
          <input id="to" name="to" type="date" defaultValue={params.to} />
        </div>
        <div>
          <label htmlFor="assignee">{t('filters.assignee')}</label>
          <select id="assignee" name="assignee" defaultValue={params.assignee ?? ''}>
            <option value="">{t('filters.anyone')}</option>
            <option value="none">{t('filters.unassigned')}</option>
            {data.operators.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
        </div>
        <div className="filter-buttons">
          <button type="submit">{t('common:buttons.apply')}</button>{' '}
          {filtered ? <Link to="/users">{t('common:buttons.clear')}</Link> : null}
        </div>
      </Form>

      <p className="muted" aria-live="polite">
        {busy
          ? t('list.loading')
          : data.countsCapped
            ? t('list.capped', { cap: SEARCH_CAP })
            : t(filtered ? 'list.matching' : 'list.count', { count: data.total })}
      </p>

      <ServerTable
        rows={data.rows}
        columns={columns}
        sortable={sortable}
        sort={params.sort}
        dir={params.dir}
        page={data.page}
        pageSize={data.pageSize}
        pageCount={data.pageCount}
        rowCount={data.total}
        rowKey={(r) => r.id}
        rowProps={(r) => ({ 'data-user-id': r.id })}
        className="users-table"
        empty={
          <div className="card empty">
            {filtered ? (
              <p>
                {t('list.empty_filtered')} <Link to="/users">{t('list.empty_filtered_clear')}</Link> {t('list.empty_filtered_hint')}
              </p>
            ) : (
              <p>
                {t('list.empty')}{' '}
                {operator && operator.role !== 'viewer' ? <Link to="/users/new">{t('list.empty_create')}</Link> : t('list.empty_viewer')}
              </p>
            )}
          </div>
        }
      />

      <Pager page={data.page} pageCount={data.pageCount}>
        <Form method="get" className="inline">
          {[...new URLSearchParams(location.search).entries()]
            .filter(([k]) => k !== 'size' && k !== 'page')
            .map(([k, v], i) => (
              <input key={`${k}${i}`} type="hidden" name={k} value={v} />
            ))}
          <label htmlFor="size" className="inline">
            {t('common:pager.page_size')}
          </label>{' '}
          <select id="size" name="size" defaultValue={String(data.pageSize)}>
            {[10, 25, 50, 100].map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>{' '}
          <button type="submit" className="secondary small">
            {t('common:buttons.show')}
          </button>
        </Form>
      </Pager>
    </main>
  );
}
