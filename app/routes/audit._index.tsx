import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { auditPageData, compareAnchor, verifyChain, type CompareResult } from '~/audit.server';
import { CsrfInput } from '~/components/csrf';
import { ServerTable } from '~/components/server-table';
import { CopyButton, TimeAgo } from '~/components/ui';

export const meta: MetaFunction = () => [{ title: 'Audit log — KYC Desk' }];

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
const utc = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')} UTC`;

function CompareMessage({ r }: { r: CompareResult }) {
  if (r.code === 'invalid') {
    return (
      <div className="toast error" role="alert" data-testid="compare-result">
        Enter the head hash (64 hexadecimal characters) and the entry count exactly as the anchor line shows them.
      </div>
    );
  }
  if (r.code === 'match') {
    return (
      <div className="toast ok" role="status" data-testid="compare-result">
        The anchor matches: today’s chain verifies up to entry {r.count} and has that hash there, so the first {r.count} entries are exactly
        those anchored ({utc(r.checkedAt)}).
      </div>
    );
  }
  return (
    <div className="toast error" role="alert" data-testid="compare-result">
      {r.code === 'short'
        ? `The anchor does not match: it counted ${r.count} entries, the log now has ${r.rows}. Entries were removed.`
        : r.code === 'different'
          ? `The anchor does not match: entry ${r.count} now has hash ${r.found}, not the saved one. Entries up to it were rewritten (and the chain recomputed).`
          : `The chain is broken at entry #${r.brokenAtId} (${r.reason}), before entry ${r.count}.`}{' '}
      Preserve the database as it is and tell the security lead.
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
  const d = useLoaderData<typeof loader>();
  const verified = useActionData<typeof action>();
  const navigation = useNavigation();
  const location = useLocation();
  const f = d.filters;
  const columns = useMemo(
    () => [
      col.accessor('id', { header: '#' }),
      col.accessor('at', { header: 'When (UTC)', cell: (c) => c.getValue().slice(0, 19).replace('T', ' ') }),
      col.accessor('actor', { header: 'Operator' }),
      col.accessor('action', { header: 'Action', cell: (c) => <code>{c.getValue()}</code> }),
      col.display({
        id: 'target',
        header: 'Target',
        cell: (c) => {
          const r = c.row.original;
          if (!r.targetType) return <span className="muted">—</span>;
          if (r.targetType === 'user' && r.targetId) return <Link to={`/users/${r.targetId}`}>user:{r.targetId.slice(0, 8)}…</Link>;
          return `${r.targetType}${r.targetId ? `:${r.targetId}` : ''}`;
        },
      }),
      col.accessor('outcome', {
        header: 'Outcome',
        cell: (c) => <span className={c.getValue() === 'ok' ? '' : c.getValue() === 'queued' ? 'muted' : 'error'}>{c.getValue()}</span>,
      }),
      col.accessor('detail', { header: 'Detail', cell: (c) => <span className="muted">{detailText(c.getValue())}</span> }),
      col.accessor('ip', { header: 'IP', cell: (c) => c.getValue() ?? '' }),
    ],
    [],
  );
  const anchorColumns = useMemo(
    () => [
      anchorCol.accessor('at', { header: 'Written', cell: (c) => utc(c.getValue()) }),
      anchorCol.accessor('count', { header: 'Entries' }),
      anchorCol.accessor('head', { header: 'Head hash', cell: (c) => <code>{c.getValue()}</code> }),
    ],
    [],
  );
  const query = new URLSearchParams(location.search);
  query.delete('before');
  const csvHref = `/audit.csv${query.toString() ? `?${query}` : ''}`;
  const older = new URLSearchParams(query);
  if (d.nextBefore) older.set('before', String(d.nextBefore));
  return (
    <main className="page wide">
      <div className="row-between">
        <h1>Audit log</h1>
        <div>
          <a href={csvHref} className="button secondary" download>
            Export CSV
          </a>{' '}
          {d.canVerify ? (
            <Form method="post" className="inline">
              <CsrfInput />
              <input type="hidden" name="intent" value="verify" />
              <button type="submit" disabled={navigation.state === 'submitting'}>
                {navigation.state === 'submitting' ? 'Verifying…' : 'Verify chain'}
              </button>
            </Form>
          ) : null}
        </div>
      </div>
      {verified?.kind === 'compare' ? <CompareMessage r={verified} /> : null}
      {verified?.kind === 'verify' ? (
        verified.ok ? (
          <div className="toast ok" role="status" data-testid="verify-result">
            Chain intact: {verified.rows} entries checked, none missing or altered ({verified.checkedAt.slice(0, 19).replace('T', ' ')}{' '}
            UTC).
          </div>
        ) : (
          <div className="toast error" role="alert" data-testid="verify-result">
            Chain broken at entry #{verified.brokenAtId}: {verified.reason}. {verified.rows} entries before it check out. Preserve the
            database as it is and tell the security lead.
          </div>
        )
      ) : null}
      <section className="card" aria-labelledby="anchor-h" data-testid="chain-anchor">
        <h2 id="anchor-h">Chain anchor</h2>
        <p>
          Head after {d.chain.count} entr{d.chain.count === 1 ? 'y' : 'ies'}: <code>{d.chain.head}</code> <CopyButton text={d.chain.head} />
        </p>
        <p className="muted">
          {d.anchors[0] ? (
            <>
              Last anchor written to the server log <TimeAgo iso={d.anchors[0].at} /> ({d.anchors[0].count} entries).
            </>
          ) : (
            'No anchor written yet: a worker writes one to the server log every hour.'
          )}{' '}
          Keep anchor lines outside this system; a saved one must still match today’s chain.
        </p>
        <Form method="post" className="inline">
          <CsrfInput />
          <input type="hidden" name="intent" value="compare" />
          <label htmlFor="anchor-head">Saved head hash</label>{' '}
          <input id="anchor-head" name="head" required size={66} maxLength={80} autoComplete="off" spellCheck={false} />{' '}
          <label htmlFor="anchor-count">Entries</label> <input id="anchor-count" name="count" type="number" min={0} step={1} required />{' '}
          <button type="submit" className="secondary" disabled={navigation.state === 'submitting'}>
            Compare with today’s chain
          </button>
        </Form>
        {d.anchors.length ? (
          <details>
            <summary>Recent anchors</summary>
            <ServerTable rows={d.anchors} columns={anchorColumns} className="audit-anchors" />
          </details>
        ) : null}
      </section>
      {d.problems.map((p) => (
        <div key={p} className="toast error" role="alert">
          {p}
        </div>
      ))}
      <Form method="get" className="filters card" role="search">
        <label htmlFor="operator">Operator</label>
        <input id="operator" name="operator" list="operators" defaultValue={f.operator ?? ''} placeholder="e-mail or part of it" />
        <datalist id="operators">
          {d.operators.map((o) => (
            <option key={o.id} value={o.email}>
              {o.name}
            </option>
          ))}
        </datalist>
        <label htmlFor="action">Action</label>
        <select id="action" name="action" defaultValue={f.action ?? ''}>
          <option value="">Any</option>
          {d.groups.map((g) => (
            <option key={g} value={`${g}.`}>
              {g}.* (all)
            </option>
          ))}
          {d.actions.map((a) => (
            <option key={a} value={a}>
              {a}
            </option>
          ))}
        </select>
        <label htmlFor="target">Target</label>
        <input id="target" name="target" defaultValue={f.target ?? ''} placeholder="user:<id>, operator:, or an id" />
        <label htmlFor="outcome">Outcome</label>
        <select id="outcome" name="outcome" defaultValue={f.outcome ?? ''}>
          <option value="">Any</option>
          {['ok', 'error', 'denied', 'queued'].map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
        <label htmlFor="from">From</label>
        <input id="from" name="from" type="date" defaultValue={f.from ?? ''} />
        <label htmlFor="to">To</label>
        <input id="to" name="to" type="date" defaultValue={f.to ?? ''} />{' '}
        <button type="submit" className="secondary">
          Filter
        </button>{' '}
        <Link to="/audit">Clear</Link>
      </Form>
      <p className="muted" aria-live="polite">
        {d.total} entr{d.total === 1 ? 'y' : 'ies'} match. Newest first; the log cannot be edited or deleted.
      </p>
      <ServerTable
        rows={d.rows}
        columns={columns}
        className="audit-table"
        empty={<div className="card empty">No entries match these filters.</div>}
      />
      <nav className="pager" aria-label="Pages">
        {query.get('before') !== null || location.search.includes('before=') ? <Link to={`?${query}`}>↑ Newest</Link> : null}{' '}
        {d.nextBefore ? <Link to={`?${older}`}>Older →</Link> : <span className="muted">End of the log</span>}
      </nav>
    </main>
  );
}
