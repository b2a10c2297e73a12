import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useLoaderData, useLocation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { requireOperator } from '~/auth.server';
import { OpsNav, Pager, ServerTable, Time, withParams } from '~/components/ops';
import { inboxListData } from '~/inbox.server';

export const meta: MetaFunction = () => [{ title: 'Webhook inbox · KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return inboxListData(who, new URL(request.url).searchParams);
}

type Row = Awaited<ReturnType<typeof loader>>['rows'][number];
const col = createColumnHelper<Row>();
const SORTABLE = new Set(['id', 'eventName', 'externalUserId', 'signatureVerdict', 'status']);

export default function WebhookInbox() {
  const data = useLoaderData<typeof loader>();
  const location = useLocation();
  const p = data.params;

  const columns = useMemo(
    () => [
      col.accessor('id', {
        header: 'Received',
        cell: (c) => (
          <Link to={`/webhooks/${c.getValue()}`}>
            #{c.getValue()} · <Time iso={c.row.original.receivedAt} />
          </Link>
        ),
      }),
      col.accessor('eventName', {
        header: 'Event',
        cell: (c) =>
          c.getValue() ? (
            <>
              <span className="muted">{c.row.original.eventType}</span> {c.getValue()}
            </>
          ) : (
            <span className="muted">—</span>
          ),
      }),
      col.accessor('externalUserId', {
        header: 'Customer',
        cell: (c) => {
          const ext = c.getValue();
          const uid = c.row.original.userId;
          if (!ext) return <span className="muted">—</span>;
          return uid ? <Link to={`/users/${uid}`}>{ext}</Link> : <span title="No customer with this id in KYC Desk">{ext}</span>;
        },
      }),
      col.accessor('signatureVerdict', {
        header: 'Signature',
        cell: (c) => <span className={c.getValue() === 'valid' ? '' : 'error'}>{c.getValue()}</span>,
      }),
      col.accessor('duplicateOf', {
        header: 'New / repeat',
        enableSorting: false,
        cell: (c) => (c.getValue() !== null ? <Link to={`/webhooks/${c.getValue()}`}>repeat of #{c.getValue()}</Link> : 'new'),
      }),
      col.accessor('status', { header: 'Status', cell: (c) => <span className={`badge ${c.getValue()}`}>{c.getValue()}</span> }),
      col.display({
        id: 'change',
        header: 'State change',
        cell: (c) => {
          const r = c.row.original;
          if (r.stateFrom && r.stateTo && r.stateFrom !== r.stateTo)
            return (
              <strong>
                {r.stateFrom} → {r.stateTo}
              </strong>
            );
          return <span className="muted">{r.effect ? r.effect.replace(/_/g, ' ') : '—'}</span>;
        },
      }),
      col.accessor('error', {
        header: 'Processing error',
        enableSorting: false,
        cell: (c) => (c.getValue() ? <span className="error">{c.getValue()}</span> : <span className="muted">—</span>),
      }),
    ],
    [],
  );

  const filtered = Boolean(
    p.customer || p.event || p.verdict || p.status || p.duplicate || p.changedOnly || p.errorsOnly || p.from || p.to,
  );

  return (
    <main className="page wide">
      <h1>Webhook inbox</h1>
      <OpsNav />
      <p className="muted">Every delivery Capa sent us, whether we trusted it, and what it changed for which customer.</p>

      <Form method="get" className="filters card" role="search">
        <input type="hidden" name="sort" value={p.sort} />
        <input type="hidden" name="dir" value={p.dir} />
        <div>
          <label htmlFor="customer">Customer (externalUserId)</label>
          <input id="customer" name="customer" type="search" defaultValue={p.customer ?? ''} placeholder="exact externalUserId" />
        </div>
        <div>
          <label htmlFor="event">Event</label>
          <select id="event" name="event" defaultValue={p.event ?? ''}>
            <option value="">Any</option>
            {data.events.map((e) => (
              <option key={e}>{e}</option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="verdict">Signature</label>
          <select id="verdict" name="verdict" defaultValue={p.verdict ?? ''}>
            <option value="">Any</option>
            {data.verdicts.map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="status">Status</label>
          <select id="status" name="status" defaultValue={p.status ?? ''}>
            <option value="">Any</option>
            {data.statuses.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="dup">New / repeat</label>
          <select id="dup" name="dup" defaultValue={p.duplicate ?? ''}>
            <option value="">Both</option>
            <option value="new">New only</option>
            <option value="duplicate">Repeats only</option>
          </select>
        </div>
        <div>
          <label htmlFor="from">Received from</label>
          <input id="from" name="from" type="date" defaultValue={p.from} />
        </div>
        <div>
          <label htmlFor="to">to</label>
          <input id="to" name="to" type="date" defaultValue={p.to} />
        </div>
        <div>
          <label>
            <input type="checkbox" name="changed" value="1" defaultChecked={p.changedOnly} /> Changed a state
          </label>
          <label>
            <input type="checkbox" name="errors" value="1" defaultChecked={p.errorsOnly} /> With an error
          </label>
        </div>
        <div className="filter-buttons">
          <button type="submit">Apply</button> {filtered ? <Link to="/webhooks">Clear</Link> : null}
        </div>
      </Form>

      <p className="muted" aria-live="polite">
        {data.total} deliver{data.total === 1 ? 'y' : 'ies'}
        {filtered ? ' match' : ''}
      </p>

      {data.total === 0 ? (
        <div className="card empty">
          {filtered ? (
            <p>
              No delivery matches these filters. <Link to="/webhooks">Clear the filters</Link>.
            </p>
          ) : (
            <p>No webhook has arrived yet. Check the webhook URL registered at Capa on the settings page.</p>
          )}
        </div>
      ) : (
        <ServerTable
          rows={data.rows}
          columns={columns}
          sortable={SORTABLE}
          sort={p.sort}
          dir={p.dir}
          page={data.page}
          pageSize={data.pageSize}
          pageCount={data.pageCount}
          rowKey={(r) => String(r.id)}
          className="inbox-table"
        />
      )}
      <Pager page={data.page} pageCount={data.pageCount} />
      {data.pageCount > 1 ? (
        <p className="muted">
          Per page:{' '}
          {[25, 50, 100, 200].map((n) => (
            <Link key={n} to={withParams(location.search, { size: String(n) })} className={n === data.pageSize ? 'active' : ''}>
              {n}{' '}
            </Link>
          ))}
        </p>
      ) : null}
    </main>
  );
}
