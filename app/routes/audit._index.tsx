import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { auditPageData, compareAnchor, verifyChain, type CompareResult } from '~/audit.server';
import { CsrfInput } from '~/components/csrf';
import { useFormat } from '~/components/format';
import { useSay } from '~/components/message';
import { ServerTable } from '~/components/server-table';
import { CopyButton, TimeAgo } from '~/components/ui';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'audit:page_title') }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  return auditPageData(who, new URL(request.url).searchParams);
}

/** Compare a saved anchor with today's chain (compliance+), or verify the whole chain (admin). */
export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  if (who.form.get('intent') === 'compare') return compareAnchor(request, who, who.form);
  await requireOperator(request, 'admin');
  return verifyChain(request, who);
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();
type AnchorRow = Data['anchors'][number];
const anchorCol = createColumnHelper<AnchorRow>();
const OUTCOMES = ['ok', 'error', 'denied', 'queued'] as const;

function CompareMessage({ r }: { r: CompareResult }) {
  const { t } = useTranslation('audit');
  const fmt = useFormat();
  const when = fmt.dateTime(r.checkedAt, { seconds: true });
  if (r.code === 'invalid') {
    return (
      <div className="toast error" role="alert" data-testid="compare-result">
        {t('compare.invalid')}
      </div>
    );
  }
  if (r.code === 'match') {
    return (
      <div className="toast ok" role="status" data-testid="compare-result">
        {t('compare.match', { count: r.count, when })}
      </div>
    );
  }
  return (
    <div className="toast error" role="alert" data-testid="compare-result">
      {r.code === 'short'
        ? t('compare.short', { count: r.count, rows: r.rows })
        : r.code === 'different'
          ? t('compare.different', { count: r.count, found: r.found })
          : t('compare.broken', { id: r.brokenAtId, reason: r.reasonCode, text: r.reasonText, count: r.count })}{' '}
      {t('compare.preserve')}
    </div>
  );
}

function detailText(detail: string | null): string {
  if (!detail) return '';
  try {
    const d = JSON.parse(detail) as Record<string, unknown>;
    return Object.entries(d)
      .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' · ');
  } catch {
    return detail;
  }
}

export default function AuditLog() {
  const { t } = useTranslation('audit');
  const fmt = useFormat();
  const say = useSay();
  const d = useLoaderData<typeof loader>();
  const verified = useActionData<typeof action>();
  const navigation = useNavigation();
  const location = useLocation();
  const f = d.filters;
  const actionLabel = (a: string) => t(`actions.${a}`, { defaultValue: a });
  const columns = useMemo(
    () => [
      col.accessor('id', { header: t('columns.id') }),
      col.accessor('at', {
        header: t('columns.at'),
        cell: (c) => (
          <time dateTime={c.getValue()} title={c.getValue()}>
            {fmt.dateTime(c.getValue(), { seconds: true })}
          </time>
        ),
      }),
      col.accessor('actor', { header: t('columns.operator') }),
      col.accessor('action', {
        header: t('columns.action'),
        cell: (c) => (
          <>
            {t(`actions.${c.getValue()}`, { defaultValue: c.getValue() })} <code className="muted small">{c.getValue()}</code>
          </>
        ),
      }),
      col.display({
        id: 'target',
        header: t('columns.target'),
        cell: (c) => {
          const r = c.row.original;
          if (!r.targetType) return <span className="muted">—</span>;
          if (r.targetType === 'user' && r.targetId)
            return (
              <Link to={`/users/${r.targetId}`}>
                <code>{`user:${r.targetId.slice(0, 8)}…`}</code>
              </Link>
            );
          return <code>{`${r.targetType}${r.targetId ? `:${r.targetId}` : ''}`}</code>;
        },
      }),
      col.accessor('outcome', {
        header: t('columns.outcome'),
        cell: (c) => (
          <span className={c.getValue() === 'ok' ? '' : c.getValue() === 'queued' ? 'muted' : 'error'} title={c.getValue()}>
            {t(`outcomes.${c.getValue()}`, { defaultValue: c.getValue() })}
          </span>
        ),
      }),
      // What the writer recorded, as recorded: field names and values are the log's own data.
      col.accessor('detail', { header: t('columns.detail'), cell: (c) => <code className="muted">{detailText(c.getValue())}</code> }),
      col.accessor('ip', { header: t('columns.ip'), cell: (c) => c.getValue() ?? '' }),
    ],
    [t, fmt],
  );
  const anchorColumns = useMemo(
    () => [
      anchorCol.accessor('at', { header: t('anchor.columns.written'), cell: (c) => fmt.dateTime(c.getValue(), { seconds: true }) }),
      anchorCol.accessor('count', { header: t('anchor.columns.entries'), cell: (c) => fmt.number(c.getValue()) }),
      anchorCol.accessor('head', { header: t('anchor.columns.head'), cell: (c) => <code>{c.getValue()}</code> }),
    ],
    [t, fmt],
  );
  const query = new URLSearchParams(location.search);
  query.delete('before');
  const csvHref = `/audit.csv${query.toString() ? `?${query}` : ''}`;
  const older = new URLSearchParams(query);
  if (d.nextBefore) older.set('before', String(d.nextBefore));
  return (
    <main className="page wide">
      <div className="row-between">
        <h1>{t('heading')}</h1>
        <div>
          <Link to="/audit/retention" className="button secondary">
            {t('retention_link')}
          </Link>{' '}
          <a href={csvHref} className="button secondary" download>
            {t('export_csv')}
          </a>{' '}
          {d.canVerify ? (
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="verify" />
              <button type="submit" disabled={navigation.state === 'submitting'}>
                {navigation.state === 'submitting' ? t('verifying') : t('verify')}
              </button>
            </Form>
          ) : null}
        </div>
      </div>
      {verified?.kind === 'compare' ? <CompareMessage r={verified} /> : null}
      {verified?.kind === 'verify' ? (
        verified.ok ? (
          <div className="toast ok" role="status" data-testid="verify-result">
            {t('verify_ok', { count: verified.rows, when: fmt.dateTime(verified.checkedAt, { seconds: true }) })}
          </div>
        ) : (
          <div className="toast error" role="alert" data-testid="verify-result">
            {t('verify_broken', { id: verified.brokenAtId, reason: verified.reasonCode, text: verified.reasonText, rows: verified.rows })}
          </div>
        )
      ) : null}
      <section className="card" aria-labelledby="anchor-h" data-testid="chain-anchor">
        <h2 id="anchor-h">{t('anchor.heading')}</h2>
        <p>
          {t('anchor.head_after', { count: d.chain.count })} <code>{d.chain.head}</code> <CopyButton text={d.chain.head} />
        </p>
        <p className="muted">
          {d.anchors[0] ? (
            <>
              {t('anchor.last_written')} <TimeAgo iso={d.anchors[0].at} /> {t('anchor.last_written_count', { count: d.anchors[0].count })}
            </>
          ) : (
            t('anchor.none')
          )}{' '}
          {t('anchor.keep_outside')}
        </p>
        <Form method="post" className="inline">
          <CsrfInput />
          <input type="hidden" name="intent" value="compare" />
          <label htmlFor="anchor-head">{t('anchor.saved_head')}</label>{' '}
          <input id="anchor-head" name="head" required size={66} maxLength={80} autoComplete="off" spellCheck={false} />{' '}
          <label htmlFor="anchor-count">{t('anchor.entries')}</label>{' '}
          <input id="anchor-count" name="count" type="number" min={0} step={1} required />{' '}
          <button type="submit" className="secondary" disabled={navigation.state === 'submitting'}>
            {t('anchor.compare')}
          </button>
        </Form>
        {d.anchors.length ? (
          <details>
            <summary>{t('anchor.recent')}</summary>
            <ServerTable rows={d.anchors} columns={anchorColumns} className="audit-anchors" />
          </details>
        ) : null}
      </section>
      {d.problems.map((p) => (
        <div key={p.code} className="toast error" role="alert">
          {say(p)}
        </div>
      ))}
      <Form method="get" className="filters card" role="search">
        <label htmlFor="operator">{t('filters.operator')}</label>
        <input
          id="operator"
          name="operator"
          list="operators"
          defaultValue={f.operator ?? ''}
          placeholder={t('filters.operator_placeholder')}
        />
        <datalist id="operators">
          {d.operators.map((o) => (
            <option key={o.id} value={o.email}>
              {o.name}
            </option>
          ))}
        </datalist>
        <label htmlFor="action">{t('filters.action')}</label>
        <select id="action" name="action" defaultValue={f.action ?? ''}>
          <option value="">{t('filters.any')}</option>
          {d.groups.map((g) => (
            <option key={g} value={`${g}.`}>
              {t('filters.group_all', { group: t(`groups.${g}`, { defaultValue: g }) })}
            </option>
          ))}
          {d.actions.map((a) => (
            <option key={a} value={a}>
              {actionLabel(a)}
            </option>
          ))}
        </select>
        <label htmlFor="target">{t('filters.target')}</label>
        <input id="target" name="target" defaultValue={f.target ?? ''} placeholder={t('filters.target_placeholder')} />
        <label htmlFor="outcome">{t('filters.outcome')}</label>
        <select id="outcome" name="outcome" defaultValue={f.outcome ?? ''}>
          <option value="">{t('filters.any')}</option>
          {OUTCOMES.map((o) => (
            <option key={o} value={o}>
              {t(`outcomes.${o}`)}
            </option>
          ))}
        </select>
        <label htmlFor="from">{t('filters.from')}</label>
        <input id="from" name="from" type="date" defaultValue={f.from ?? ''} />
        <label htmlFor="to">{t('filters.to')}</label>
        <input id="to" name="to" type="date" defaultValue={f.to ?? ''} />{' '}
        <button type="submit" className="secondary">
          {t('filters.filter')}
        </button>{' '}
        <Link to="/audit">{t('filters.clear')}</Link>
      </Form>
      <p className="muted" aria-live="polite">
        {t('count', { count: d.total })}
      </p>
      <ServerTable rows={d.rows} columns={columns} className="audit-table" empty={<div className="card empty">{t('empty')}</div>} />
      <nav className="pager" aria-label={t('pages')}>
        {query.get('before') !== null || location.search.includes('before=') ? <Link to={`?${query}`}>{t('newest')}</Link> : null}{' '}
        {d.nextBefore ? <Link to={`?${older}`}>{t('older')}</Link> : <span className="muted">{t('end')}</span>}
      </nav>
    </main>
  );
}
