import type { SignatureVerdict, WebhookDelivery, WebhookStatus } from '../schema.js';
import type { Executor } from '../client.js';

/**
 * The webhook inbox as the operations console reads it: server-side filter, sort and paging.
 * Every filter has an index ending in `id` (migrations 0001 and 20261125_0006_ops), and `id` is the
 * tie-breaker of every sort, so pages are stable while deliveries keep arriving.
 */
export const INBOX_SORTABLE = ['id', 'eventName', 'externalUserId', 'signatureVerdict', 'status'] as const;
export type InboxSort = (typeof INBOX_SORTABLE)[number];
export const VERDICTS: readonly SignatureVerdict[] = ['valid', 'missing', 'malformed', 'mismatch'];
export const INBOX_STATUSES: readonly WebhookStatus[] = ['received', 'processed', 'ignored', 'rejected', 'failed'];

export interface InboxQuery {
  /** Exact externalUserId (ours, as Capa echoes it) or our user id. */
  customer?: string | null;
  event?: string | null;
  verdict?: SignatureVerdict | null;
  status?: WebhookStatus | null;
  /** 'duplicate' = a repeat of an earlier delivery; 'new' = not a repeat. */
  duplicate?: 'duplicate' | 'new' | null;
  /** Only deliveries that moved a customer's state. */
  changedOnly?: boolean;
  /** Only deliveries with a processing error. */
  errorsOnly?: boolean;
  /** Inclusive ISO bounds on receivedAt. */
  receivedFrom?: string | null;
  receivedTo?: string | null;
  sort?: InboxSort;
  dir?: 'asc' | 'desc';
  page?: number;
  pageSize?: number;
}

export interface InboxRow {
  id: number;
  receivedAt: string;
  eventType: string | null;
  eventName: string | null;
  externalUserId: string | null;
  /** Our user: the one the worker settled on, else the customer with this externalUserId. */
  userId: string | null;
  signatureVerdict: SignatureVerdict;
  duplicateOf: number | null;
  status: WebhookStatus;
  stateFrom: string | null;
  stateTo: string | null;
  effect: string | null;
  error: string | null;
  attempts: number;
  processedAt: string | null;
}

export interface InboxPage {
  rows: InboxRow[];
  total: number;
  page: number;
  pageSize: number;
  pageCount: number;
}

export async function listInbox(db: Executor, q: InboxQuery): Promise<InboxPage> {
  const pageSize = Math.min(Math.max(Math.trunc(q.pageSize ?? 50), 1), 200);
  const sort: InboxSort = INBOX_SORTABLE.includes(q.sort as InboxSort) ? (q.sort as InboxSort) : 'id';
  const dir = q.dir === 'asc' ? 'asc' : 'desc';

  const base = db.selectFrom('webhookInbox as w').where((eb) => {
    const c = [];
    const customer = q.customer?.trim();
    if (customer) c.push(eb.or([eb('w.externalUserId', '=', customer), eb('w.userId', '=', customer)]));
    if (q.event) c.push(eb('w.eventName', '=', q.event));
    if (q.verdict) c.push(eb('w.signatureVerdict', '=', q.verdict));
    if (q.status) c.push(eb('w.status', '=', q.status));
    if (q.duplicate === 'duplicate') c.push(eb('w.duplicateOf', 'is not', null));
    if (q.duplicate === 'new') c.push(eb('w.duplicateOf', 'is', null));
    if (q.changedOnly)
      c.push(eb.and([eb('w.stateTo', 'is not', null), eb('w.stateFrom', 'is not', null), eb('w.stateFrom', '<>', eb.ref('w.stateTo'))]));
    if (q.errorsOnly) c.push(eb('w.error', 'is not', null));
    if (q.receivedFrom) c.push(eb('w.receivedAt', '>=', q.receivedFrom));
    if (q.receivedTo) c.push(eb('w.receivedAt', '<=', q.receivedTo));
    return eb.and(c);
  });

  const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const total = Number(n);
  const pageCount = Math.max(1, Math.ceil(total / pageSize));
  const page = Math.min(Math.max(Math.trunc(q.page ?? 1), 1), pageCount);
  if (total === 0) return { rows: [], total, page, pageSize, pageCount };

  let rowsQ = base
    .leftJoin('users as u', 'u.externalUserId', 'w.externalUserId')
    .select([
      'w.id',
      'w.receivedAt',
      'w.eventType',
      'w.eventName',
      'w.externalUserId',
      'w.signatureVerdict',
      'w.duplicateOf',
      'w.status',
      'w.stateFrom',
      'w.stateTo',
      'w.effect',
      'w.error',
      'w.attempts',
      'w.processedAt',
    ])
    .select((eb) => eb.fn.coalesce('w.userId', 'u.id').as('userId'))
    .orderBy(`w.${sort}`, dir);
  if (sort !== 'id') rowsQ = rowsQ.orderBy('w.id', dir);
  const rows = await rowsQ
    .limit(pageSize)
    .offset((page - 1) * pageSize)
    .execute();
  return { rows: rows as InboxRow[], total, page, pageSize, pageCount };
}

/** Distinct event names seen (for the filter's choices). Bounded; the index makes it cheap. */
export async function inboxEventNames(db: Executor, limit = 100): Promise<string[]> {
  const rows = await db
    .selectFrom('webhookInbox')
    .select('eventName')
    .distinct()
    .where('eventName', 'is not', null)
    .orderBy('eventName')
    .limit(limit)
    .execute();
  return rows.map((r) => r.eventName!).filter(Boolean);
}

export interface DeliveryContext {
  original: Pick<WebhookDelivery, 'id' | 'receivedAt' | 'status'> | null;
  duplicates: Array<Pick<WebhookDelivery, 'id' | 'receivedAt'>>;
  stateChanges: Array<{ id: number; at: string; fromState: string; toState: string; reason: string | null }>;
  jobRuns: Array<{
    id: number;
    jobId: string;
    status: string;
    attempt: number;
    error: string | null;
    startedAt: string;
    finishedAt: string | null;
  }>;
  customer: { id: string; externalUserId: string; kycState: string } | null;
}

/** What a delivery is tied to: its original or repeats, the state changes it caused, its job runs. */
export async function deliveryContext(db: Executor, d: WebhookDelivery): Promise<DeliveryContext> {
  const [original, duplicates, stateChanges, jobRuns, customer] = await Promise.all([
    d.duplicateOf !== null
      ? db.selectFrom('webhookInbox').select(['id', 'receivedAt', 'status']).where('id', '=', d.duplicateOf).executeTakeFirst()
      : Promise.resolve(undefined),
    db.selectFrom('webhookInbox').select(['id', 'receivedAt']).where('duplicateOf', '=', d.id).orderBy('id').limit(50).execute(),
    db
      .selectFrom('stateChanges')
      .select(['id', 'at', 'fromState', 'toState', 'reason'])
      .where('causeType', '=', 'webhook')
      .where('causeId', '=', String(d.id))
      .orderBy('id')
      .execute(),
    db
      .selectFrom('jobRuns')
      .select(['id', 'jobId', 'status', 'attempt', 'error', 'startedAt', 'finishedAt'])
      .where('jobName', '=', 'process-webhook')
      .where('jobId', '=', `wh-${d.id}`)
      .orderBy('id', 'desc')
      .limit(50)
      .execute(),
    d.userId
      ? db.selectFrom('users').select(['id', 'externalUserId', 'kycState']).where('id', '=', d.userId).executeTakeFirst()
      : d.externalUserId
        ? db
            .selectFrom('users')
            .select(['id', 'externalUserId', 'kycState'])
            .where('externalUserId', '=', d.externalUserId)
            .executeTakeFirst()
        : Promise.resolve(undefined),
  ]);
  return { original: original ?? null, duplicates, stateChanges, jobRuns, customer: customer ?? null };
}

/** Count of deliveries per signature verdict and per status (for /metrics). */
export async function inboxCounts(db: Executor): Promise<{ byVerdict: Record<string, number>; byStatus: Record<string, number> }> {
  const [v, s] = await Promise.all([
    db
      .selectFrom('webhookInbox')
      .select(['signatureVerdict as k', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('signatureVerdict')
      .execute(),
    db
      .selectFrom('webhookInbox')
      .select(['status as k', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('status')
      .execute(),
  ]);
  const byVerdict: Record<string, number> = Object.fromEntries(VERDICTS.map((k) => [k, 0]));
  const byStatus: Record<string, number> = Object.fromEntries(INBOX_STATUSES.map((k) => [k, 0]));
  for (const r of v) byVerdict[r.k] = Number(r.n);
  for (const r of s) byStatus[r.k] = Number(r.n);
  return { byVerdict, byStatus };
}
