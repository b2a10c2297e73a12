import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { requireOperator } from '~/auth.server';
import { usersListData } from '~/users.server';
import { useRootData } from '~/components/csrf';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { StateBadge, TimeAgo } from '~/components/ui';

export const meta: MetaFunction = () => [{ title: 'Users — KYC Desk' }];

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
  const data = useLoaderData<typeof loader>();
  const { operator } = useRootData();
  const location = useLocation();
  const navigation = useNavigation();
  const { params } = data;

  const columns = useMemo(
    () => [
      col.accessor('email', {
        header: 'Customer',
        cell: (c) => (
          <>
            <Link to={`/users/${c.row.original.id}`}>{c.getValue()}</Link>
            {c.row.original.alias ? <div className="muted">{c.row.original.alias}</div> : null}
          </>
        ),
      }),
      col.accessor('externalUserId', { header: 'External id', cell: (c) => <code>{c.getValue()}</code> }),
      col.accessor('kycState', {
        header: 'KYC state',
        cell: (c) => (
          <>
            <StateBadge state={c.getValue()} />
            {c.row.original.linkExpired ? <span className="muted"> link expired</span> : null}
            {c.row.original.capaSync === 'failed' ? <span className="error"> not in Capa</span> : null}
          </>
        ),
      }),
      col.accessor('kycStateChangedAt', { header: 'State since', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
      col.accessor('type', { header: 'Type' }),
      col.accessor('country', { header: 'Country', cell: (c) => c.getValue() ?? '—' }),
      col.accessor('assigneeName', {
        header: 'Assignee',
        enableSorting: false,
        cell: (c) => c.getValue() ?? <span className="muted">—</span>,
      }),
      col.accessor('createdAt', { header: 'Created', cell: (c) => <TimeAgo iso={c.getValue()} /> }),
    ],
    [],
  );

  const sortable = new Set(['email', 'externalUserId', 'kycState', 'kycStateChangedAt', 'type', 'country', 'createdAt']);
  const filtered = Boolean(
    params.q || params.type || params.country || params.from || params.to || params.assignee || (params.states ?? []).length,
  );
  const busy = navigation.state === 'loading' && navigation.location?.pathname === '/users';

  return (
    <main className="page wide">
      <div className="row-between">
        <h1>Users</h1>
        {operator && operator.role !== 'viewer' ? (
          <Link to="/users/new" className="button">
            New customer
          </Link>
        ) : null}
      </div>

      <nav className="chips" aria-label="Filter by state">
        <Link to={withParams(location.search, { state: null })} className={`chip ${(params.states ?? []).length === 0 ? 'active' : ''}`}>
          All <strong>{data.countsCapped ? `${SEARCH_CAP}+` : Object.values(data.countsByState).reduce((a, b) => a + b, 0)}</strong>
        </Link>
        {STATES.map((s) => (
          <Link
            key={s}
            to={withParams(location.search, { state: s })}
            className={`chip ${params.states?.length === 1 && params.states[0] === s ? 'active' : ''}`}
          >
            <StateBadge state={s} /> {data.countsCapped ? null : <strong>{data.countsByState[s]}</strong>}
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
          <label htmlFor="q">Search</label>
          <input id="q" name="q" type="search" defaultValue={params.q ?? ''} placeholder="e-mail, external id, Capa id, alias" />
        </div>
        <div>
          <label htmlFor="type">Type</label>
          <select id="type" name="type" defaultValue={params.type ?? ''}>
            <option value="">Any</option>
            <option value="INDIVIDUAL">Individual</option>
            <option value="BUSINESS">Business</option>
          </select>
        </div>
        <div>
          <label htmlFor="country">Country</label>
          <select id="country" name="country" defaultValue={params.country ?? ''}>
            <option value="">Any</option>
            <option value="MX">Mexico</option>
            <option value="DO">Dominican Republic</option>
          </select>
        </div>
        <div>
          <label htmlFor="from">Created from</label>
          <input id="from" name="from" type="date" defaultValue={params.from} />
        </div>
        <div>
          <label htmlFor="to">to</label>
          <input id="to" name="to" type="date" defaultValue={params.to} />
        </div>
        <div>
          <label htmlFor="assignee">Assignee</label>
          <select id="assignee" name="assignee" defaultValue={params.assignee ?? ''}>
            <option value="">Anyone</option>
            <option value="none">Unassigned</option>
            {data.operators.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
        </div>
        <div className="filter-buttons">
          <button type="submit">Apply</button> {filtered ? <Link to="/users">Clear</Link> : null}
        </div>
      </Form>

      <p className="muted" aria-live="polite">
        {busy
          ? 'Loading…'
          : data.countsCapped
            ? `More than ${SEARCH_CAP} customers match this search; narrow it down (or add filters) to see exact counts.`
            : `${data.total} customer${data.total === 1 ? '' : 's'}${filtered ? ' match' : ''}`}
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
                No customer matches these filters. <Link to="/users">Clear the filters</Link> or search for part of an e-mail or id.
              </p>
            ) : (
              <p>
                No customers yet.{' '}
                {operator && operator.role !== 'viewer' ? (
                  <Link to="/users/new">Create the first one</Link>
                ) : (
                  'An operator with the compliance role can create one.'
                )}
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
            Per page
          </label>{' '}
          <select id="size" name="size" defaultValue={String(data.pageSize)}>
            {[10, 25, 50, 100].map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>{' '}
          <button type="submit" className="secondary small">
            Show
          </button>
        </Form>
      </Pager>
    </main>
  );
}
