import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import { kindOf } from '../client.js';
import { KYC_STATES, type Database, type KycState } from '../schema.js';
import type { Executor } from './users.js';

/**
 * The users list (server-side filter, sort, paging) and the home page's aggregates. Every
 * filter/sort combination here has an index (migration 20261126_0300_console_indexes) so the
 * list stays fast at 100k+ users; bench/users-list.ts measures it.
 */
export const SORTABLE = ['createdAt', 'email', 'externalUserId', 'kycState', 'kycStateChangedAt', 'country', 'type'] as const;
export type SortColumn = (typeof SORTABLE)[number];

export interface UsersListQuery {
  states?: KycState[];
  type?: 'INDIVIDUAL' | 'BUSINESS' | null;
  country?: 'MX' | 'DO' | null;
  /** Inclusive ISO date/time bounds on createdAt. */
  createdFrom?: string | null;
  createdTo?: string | null;
  /** An operator id, or 'none' for unassigned. */
  assignee?: string | null;
  /** Free text: e-mail, externalUserId, Capa userId, alias. */
  q?: string | null;
  sort?: SortColumn;
  dir?: 'asc' | 'desc';
  page?: number;
  pageSize?: number;
}

export interface UsersListRow {
  id: string;
  email: string;
  externalUserId: string;
  capaUserId: string | null;
  alias: string | null;
  type: 'INDIVIDUAL' | 'BUSINESS';
  country: 'MX' | 'DO' | null;
  kycState: KycState;
  kycStateChangedAt: string;
  capaSync: string;
  linkExpired: number;
  assigneeId: string | null;
  assigneeName: string | null;
  createdAt: string;
}

export interface UsersListResult {
  rows: UsersListRow[];
  total: number;
  /** Per state, under every filter except the state filter (so the chips show what a click gives). */
  countsByState: Record<KycState, number>;
  page: number;
  pageSize: number;
  pageCount: number;
}

type Eb = ExpressionBuilder<Database, 'users'>;

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function nonStateFilters(db: Kysely<Database> | Executor, eb: Eb, q: UsersListQuery) {
  const conds = [];
  if (q.type) conds.push(eb('users.type', '=', q.type));
  if (q.country) conds.push(eb('users.country', '=', q.country));
  if (q.createdFrom) conds.push(eb('users.createdAt', '>=', q.createdFrom));
  if (q.createdTo) conds.push(eb('users.createdAt', '<=', q.createdTo));
  if (q.assignee === 'none') conds.push(eb('users.assigneeId', 'is', null));
  else if (q.assignee) conds.push(eb('users.assigneeId', '=', q.assignee));
  const text = q.q?.trim();
  if (text) {
    const pattern = `%${escapeLike(text.toLowerCase())}%`;
    // SQLite's LIKE is case-insensitive for ASCII; PostgreSQL needs ILIKE. E-mails are stored
    // lower-cased, so lower-casing the pattern keeps both engines in agreement.
    const op = kindOf(db as Kysely<any>) === 'postgres' ? sql.raw('ilike') : sql.raw('like');
    const like = (col: string) => sql<boolean>`${sql.ref(col)} ${op} ${pattern} escape '\\'`;
    conds.push(eb.or([like('users.email'), like('users.external_user_id'), like('users.capa_user_id'), like('users.alias')]));
  }
  return conds;
}

export async function listUsers(db: Executor, q: UsersListQuery): Promise<UsersListResult> {
  const pageSize = Math.min(Math.max(q.pageSize ?? 25, 1), 200);
  const sort: SortColumn = SORTABLE.includes(q.sort as SortColumn) ? (q.sort as SortColumn) : 'createdAt';
  const dir = q.dir === 'asc' ? 'asc' : 'desc';
  const states = (q.states ?? []).filter((s) => (KYC_STATES as readonly string[]).includes(s));

  // One aggregate gives both the per-state chips and the total for the selected states.
  const grouped = await db
    .selectFrom('users')
    .select(['users.kycState', (eb) => eb.fn.countAll<number>().as('n')])
    .where((eb) => eb.and(nonStateFilters(db, eb, q)))
    .groupBy('users.kycState')
    .execute();
  const countsByState = Object.fromEntries(KYC_STATES.map((s) => [s, 0])) as Record<KycState, number>;
  for (const g of grouped) countsByState[g.kycState] = Number(g.n);
  const selected: readonly KycState[] = states.length ? states : KYC_STATES;
  const total = selected.reduce((n: number, s) => n + countsByState[s], 0);
  const pageCount = Math.max(1, Math.ceil(total / pageSize));
  const page = Math.min(Math.max(q.page ?? 1, 1), pageCount);

  let rowsQ = db
    .selectFrom('users')
    .leftJoin('operators', 'operators.id', 'users.assigneeId')
    .select([
      'users.id', 'users.email', 'users.externalUserId', 'users.capaUserId', 'users.alias', 'users.type', 'users.country',
      'users.kycState', 'users.kycStateChangedAt', 'users.capaSync', 'users.linkExpired', 'users.assigneeId',
      'operators.name as assigneeName', 'users.createdAt',
    ])
    .where((eb) => eb.and([...nonStateFilters(db, eb, q), ...(states.length ? [eb('users.kycState', 'in', states)] : [])]))
    .orderBy(`users.${sort}`, dir);
  // A unique tie-breaker keeps paging stable when many rows share the sort value.
  if (sort !== 'createdAt') rowsQ = rowsQ.orderBy('users.createdAt', dir);
  rowsQ = rowsQ.orderBy('users.id', dir);
  const rows = total === 0 ? [] : await rowsQ.limit(pageSize).offset((page - 1) * pageSize).execute();
  return { rows: rows as UsersListRow[], total, countsByState, page, pageSize, pageCount };
}

export async function countsByState(db: Executor): Promise<Record<KycState, number>> {
  const grouped = await db.selectFrom('users').select(['kycState', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('kycState').execute();
  const out = Object.fromEntries(KYC_STATES.map((s) => [s, 0])) as Record<KycState, number>;
  for (const g of grouped) out[g.kycState] = Number(g.n);
  return out;
}

export interface FunnelStep {
  key: 'created' | 'link_sent' | 'started' | 'verified' | 'rejected' | 'review_needed';
  label: string;
  count: number;
}

/**
 * The funnel from current states: a customer in a later state has passed every earlier step.
 * (A rejected customer who got a new link counts as link sent, not started — the latest attempt.)
 */
export function funnelFromCounts(c: Record<KycState, number>): FunnelStep[] {
  const finals = c.VERIFIED + c.REJECTED + c.REVIEW_NEEDED;
  const total = KYC_STATES.reduce((n: number, s) => n + c[s], 0);
  return [
    { key: 'created', label: 'Created', count: total },
    { key: 'link_sent', label: 'Link sent', count: total - c.NOT_STARTED },
    { key: 'started', label: 'Started', count: c.IN_PROGRESS + finals },
    { key: 'verified', label: 'Verified', count: c.VERIFIED },
    { key: 'rejected', label: 'Rejected', count: c.REJECTED },
    { key: 'review_needed', label: 'Review needed', count: c.REVIEW_NEEDED },
  ];
}

/** The customers waiting longest in a state (by when they entered it). */
export async function oldestInState(db: Executor, state: KycState, limit = 5) {
  return db
    .selectFrom('users')
    .select(['id', 'email', 'externalUserId', 'alias', 'kycState', 'kycStateChangedAt', 'createdAt'])
    .where('kycState', '=', state)
    .orderBy('kycStateChangedAt', 'asc')
    .orderBy('id', 'asc')
    .limit(limit)
    .execute();
}
