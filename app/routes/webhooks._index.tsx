import type { LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useLoaderData, useLocation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { requireOperator } from '~/auth.server';
import { useSay } from '~/components/message';
import { OpsNav, Pager, ServerTable, Time, withParams } from '~/components/ops';
import { StateBadge } from '~/components/ui';
import { pageTitle } from '~/i18n';
import { inboxListData } from '~/inbox.server';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'inbox:list.page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return inboxListData(who, new URL(request.url).searchParams);
}

type Row = Awaited<ReturnType<typeof loader>>['rows'][number];
const col = createColumnHelper<Row>();
const SORTABLE = new Set(['id', 'eventName', 'externalUserId', 'signatureVerdict', 'status']);

export default function WebhookInbox() {
  const { t } = useTranslation('inbox');
  const say = useSay();
  const data = useLoaderData<typeof loader>();
  const location = useLocation();
  const p = data.params;

  const columns = useMemo(
    () => [
      col.accessor('id', {
        header: t('list.columns.received'),
        cell: (c) => (
          <Link to={`/webhooks/${c.getValue()}`}>
            #{c.getValue()} · <Time iso={c.row.original.receivedAt} />
          </Link>
        ),
      }),
      col.accessor('eventName', {
        header: t('list.columns.event'),
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
        header: t('list.columns.customer'),
        cell: (c) => {
          const ext = c.getValue();
          const uid = c.row.original.userId;
          if (!ext) return <span className="muted">—</span>;
          return uid ? <Link to={`/users/${uid}`}>{ext}</Link> : <span title={t('list.not_our_customer')}>{ext}</span>;
        },
      }),
      col.accessor('signatureVerdict', {
        header: t('list.columns.signature'),
        cell: (c) => (
          <span className={c.getValue() === 'valid' ? '' : 'error'} title={c.getValue()}>
            {t(`verdicts.${c.getValue()}`, { defaultValue: c.getValue() })}
          </span>
        ),
      }),
      col.accessor('duplicateOf', {
        header: t('list.columns.new_repeat'),
        enableSorting: false,
        cell: (c) =>
          c.getValue() !== null ? <Link to={`/webhooks/${c.getValue()}`}>{t('list.repeat_of', { id: c.getValue() })}</Link> : t('list.new'),
      }),
      col.accessor('status', {
        header: t('list.columns.status'),
        cell: (c) => (
          <span className={`badge ${c.getValue()}`} title={c.getValue()}>
            {t(`statuses.${c.getValue()}`, { defaultValue: c.getValue() })}
          </span>
        ),
      }),
      col.display({
        id: 'change',
        header: t('list.columns.change'),
        cell: (c) => {
          const r = c.row.original;
          if (r.stateFrom && r.stateTo && r.stateFrom !== r.stateTo)
            return (
              <strong>
                <StateBadge state={r.stateFrom} /> → <StateBadge state={r.stateTo} />
              </strong>
            );
          return <span className="muted">{r.effect ? t(`effects.${r.effect}`, { defaultValue: r.effect.replace(/_/g, ' ') }) : '—'}</span>;
        },
      }),
      col.accessor('error', {
        header: t('list.columns.error'),
        enableSorting: false,
        cell: (c) => {
          const e = c.row.original.errorMessage;
          return e ? (
            <span className="error" title={c.getValue() ?? undefined}>
              {say(e)}
            </span>
          ) : (
            <span className="muted">—</span>
          );
        },
      }),
    ],
    [t, say],
  );

  const filtered = Boolean(
    p.customer || p.event || p.verdict || p.status || p.duplicate || p.changedOnly || p.errorsOnly || p.from || p.to,
  );

  return (
    <main className="page wide">
      <h1>{t('list.heading')}</h1>
      <OpsNav />
      <p className="muted">{t('list.intro')}</p>

      <Form method="get" className="filters card" role="search">
        <input type="hidden" name="sort" value={p.sort} />
        <input type="hidden" name="dir" value={p.dir} />
        <div>
          <label htmlFor="customer">{t('list.customer')}</label>
          <input id="customer" name="customer" type="search" defaultValue={p.customer ?? ''} placeholder={t('list.customer_placeholder')} />
        </div>
        <div>
          <label htmlFor="event">{t('list.event')}</label>
          <select id="event" name="event" defaultValue={p.event ?? ''}>
            <option value="">{t('list.any')}</option>
            {data.events.map((e) => (
              <option key={e}>{e}</option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="verdict">{t('list.signature')}</label>
          <select id="verdict" name="verdict" defaultValue={p.verdict ?? ''}>
            <option value="">{t('list.any')}</option>
            {data.verdicts.map((v) => (
              <option key={v} value={v}>
                {t(`verdicts.${v}`)}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="status">{t('list.status')}</label>
          <select id="status" name="status" defaultValue={p.status ?? ''}>
            <option value="">{t('list.any')}</option>
            {data.statuses.map((s) => (
              <option key={s} value={s}>
                {t(`statuses.${s}`)}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="dup">{t('list.new_repeat')}</label>
          <select id="dup" name="dup" defaultValue={p.duplicate ?? ''}>
            <option value="">{t('list.both')}</option>
            <option value="new">{t('list.new_only')}</option>
            <option value="duplicate">{t('list.repeats_only')}</option>
          </select>
        </div>
        <div>
          <label htmlFor="from">{t('list.received_from')}</label>
          <input id="from" name="from" type="date" defaultValue={p.from} />
        </div>
        <div>
          <label htmlFor="to">{t('list.to')}</label>
          <input id="to" name="to" type="date" defaultValue={p.to} />
        </div>
        <div>
          <label>
            <input type="checkbox" name="changed" value="1" defaultChecked={p.changedOnly} /> {t('list.changed_only')}
          </label>
          <label>
            <input type="checkbox" name="errors" value="1" defaultChecked={p.errorsOnly} /> {t('list.errors_only')}
          </label>
        </div>
        <div className="filter-buttons">
          <button type="submit">{t('list.apply')}</button> {filtered ? <Link to="/webhooks">{t('list.clear')}</Link> : null}
        </div>
      </Form>

      <p className="muted" aria-live="polite">
        {t(filtered ? 'list.count_match' : 'list.count', { count: data.total })}
      </p>

      {data.total === 0 ? (
        <div className="card empty">
          {filtered ? (
            <p>
              {t('list.empty_filtered')} <Link to="/webhooks">{t('list.clear_filters')}</Link>.
            </p>
          ) : (
            <p>{t('list.empty')}</p>
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
          {t('list.per_page')}{' '}
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
