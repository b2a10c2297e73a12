import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData, useLocation, useNavigation } from '@remix-run/react';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { ExportCsvLink } from '~/components/export-link';
import { Pager, ServerTable, withParams } from '~/components/server-table';
import { Toast } from '~/components/toast';
import { StateBadge } from '~/components/ui';
import { claimNextCase, reviewQueueData } from '~/review.server';

export const meta: MetaFunction = () => [{ title: 'Review queue — KYC Desk' }];

export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return reviewQueueData(who, new URL(request.url).searchParams);
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'compliance');
  const r = await claimNextCase(request, who, who.form);
  if (r instanceof Response) return r;
  return data(r, { status: 200 });
}

type Data = Awaited<ReturnType<typeof loader>>;
type Row = Data['rows'][number];
const col = createColumnHelper<Row>();

const WHO: Record<string, string> = { customer: 'Customer', capa: 'Capa', us: 'Us' };
const STATUS: Record<string, string> = {
  open: 'Open',
  waiting_customer: 'Waiting on customer',
  waiting_capa: 'Waiting on Capa',
  resolved: 'Resolved',
};

function formatDuration(ms: number): string {
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function SlaCell({ sla }: { sla: Row['sla'] }) {
  if (!sla.waitingOn) return <span className="muted">—</span>;
  const share = sla.targetMs ? sla.currentMs / sla.targetMs : 0;
  const colour = sla.breached ? 'var(--bad)' : share > 0.75 ? 'var(--warn)' : 'var(--ok)';
  return (
    <span
      data-breached={sla.breached ? 'true' : 'false'}
      style={{ color: colour, fontWeight: sla.breached ? 700 : 400 }}
      title={`Target ${formatDuration(sla.targetMs ?? 0)}. Totals — customer ${formatDuration(sla.totals.customer)}, Capa ${formatDuration(sla.totals.capa)}, us ${formatDuration(sla.totals.us)}`}
    >
      {WHO[sla.waitingOn]} · {formatDuration(sla.currentMs)}
      {sla.breached ? ' · breached' : ''}
    </span>
  );
}

export default function ReviewQueue() {
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const location = useLocation();
  const navigation = useNavigation();
  const p = d.params;
  const columns = useMemo(
    () => [
      col.accessor('queuedAt', {
        header: 'In queue since',
        cell: (c) => <time dateTime={c.getValue()}>{c.getValue().slice(0, 16).replace('T', ' ')}</time>,
      }),
      col.accessor('email', {
        header: 'Customer',
        cell: (c) => (
          <>
            <Link to={`/review/${c.row.original.userId}`}>{c.getValue()}</Link>
            <div className="muted">
              {c.row.original.externalUserId}
              {c.row.original.alias ? ` · ${c.row.original.alias}` : ''}
            </div>
          </>
        ),
      }),
      col.accessor('kycState', { header: 'State', cell: (c) => <StateBadge state={c.getValue()} /> }),
      col.accessor('country', { header: 'Country', cell: (c) => c.getValue() ?? '—' }),
      col.accessor('caseStatus', { header: 'Case', cell: (c) => STATUS[c.getValue()] ?? c.getValue() }),
      col.display({ id: 'sla', header: 'Waiting on', cell: (c) => <SlaCell sla={c.row.original.sla} /> }),
      col.accessor('assigneeName', { header: 'Assignee', cell: (c) => c.getValue() ?? <span className="muted">unassigned</span> }),
      col.accessor('openTasks', {
        header: 'Tasks',
        cell: (c) =>
          c.getValue() ? (
            `${c.getValue()} open${c.row.original.nextDue ? ` · next ${c.row.original.nextDue}` : ''}`
          ) : (
            <span className="muted">—</span>
          ),
      }),
    ],
    [],
  );
  const chip = (label: string, key: string) => (
    <Link
      to={withParams(location.search, { [key]: p[key as 'mine'] ? null : '1' })}
      className={`chip ${p[key as 'mine'] ? 'active' : ''}`}
      aria-pressed={p[key as 'mine'] ? 'true' : 'false'}
    >
      {label}
    </Link>
  );
  return (
    <main className="page wide">
      <div className="row-between">
        <h1>Review queue</h1>
        <ExportCsvLink path="/review/export.csv" />
        {d.canWork ? (
          <Form method="post">
            <CsrfInput />
            <button type="submit" disabled={navigation.state === 'submitting'}>
              Claim next case
            </button>
          </Form>
        ) : null}
      </div>
      {result ? <Toast tone={result.tone} text={result.text} /> : null}
      <p className="muted">
        Customers in review or rejected and awaiting follow-up, oldest first. The clock shows who we are waiting on — the customer (link
        sent, not started), Capa (submitted, no result) or us — and turns red past its target (customer{' '}
        {formatDuration(d.targets.customerMs)}, Capa {formatDuration(d.targets.capaMs)}, us {formatDuration(d.targets.usMs)}).
      </p>
      <nav className="chips" aria-label="Filters">
        {chip('Mine', 'mine')}
        {chip('Unassigned', 'unassigned')}
        {chip(`Breached (${d.breachedCount})`, 'breached')}
      </nav>
      <Form method="get" className="filters card" role="search">
        {p.mine ? <input type="hidden" name="mine" value="1" /> : null}
        {p.unassigned ? <input type="hidden" name="unassigned" value="1" /> : null}
        {p.breached ? <input type="hidden" name="breached" value="1" /> : null}
        <label htmlFor="state">State</label>
        <select id="state" name="state" defaultValue={p.states?.[0] ?? ''}>
          <option value="">Any</option>
          {['REVIEW_NEEDED', 'REJECTED', 'LINK_ISSUED', 'IN_PROGRESS', 'VERIFIED', 'NOT_STARTED'].map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <label htmlFor="country">Country</label>
        <select id="country" name="country" defaultValue={p.country ?? ''}>
          <option value="">Any</option>
          <option value="MX">Mexico</option>
          <option value="DO">Dominican Republic</option>
        </select>{' '}
        <button type="submit" className="secondary">
          Apply
        </button>{' '}
        <Link to="/review">Clear</Link>
      </Form>
      <p className="muted" aria-live="polite">
        {d.total} case{d.total === 1 ? '' : 's'}
        {d.truncated ? ' (only the oldest 2000 are read — the queue is unusually long)' : ''}
      </p>
      <ServerTable
        rows={d.rows}
        columns={columns}
        pageCount={d.pageCount}
        rowProps={(r) => ({ 'data-user-id': r.userId, style: r.sla.breached ? { background: '#fdf0ef' } : undefined })}
        className="review-table"
        empty={
          <div className="card empty">
            Nothing here.{' '}
            {p.mine || p.unassigned || p.breached || p.states?.length || p.country ? (
              <Link to="/review">Clear the filters</Link>
            ) : (
              'The queue is empty.'
            )}
          </div>
        }
      />
      <Pager page={p.page} pageCount={d.pageCount} />
    </main>
  );
}
