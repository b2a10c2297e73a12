import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import { kindOf } from '../client.js';
import { KYC_STATES, type Database, type KycState } from '../schema.js';
import type { Executor } from '../client.js';
import { keptCountsByState } from './user-counts.js';

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
  /** True when a broad search stopped counting at SEARCH_COUNT_CAP: totals are lower bounds. */
  countsCapped: boolean;
  page: number;
  pageSize: number;
  pageCount: number;
}

type Eb = ExpressionBuilder<Database, 'users'>;

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * PostgreSQL: the searched columns as one text, exactly the expression of the pg_trgm index
 * `users_search_trgm` (migration 20261126_0410) — change both or the index stops being used.
 */
export const PG_SEARCH_DOCUMENT = sql.raw(
  `coalesce(users.email, '') || ' ' || coalesce(users.external_user_id, '') || ' ' || coalesce(users.capa_user_id, '') || ' ' || coalesce(users.alias, '')`,
);

/** Counting stops here when a search matches very many customers ("1,000+ match"). */
export const SEARCH_COUNT_CAP = 1000;

/**
 * How a search runs. 'ids': the trigram index named at most SEARCH_COUNT_CAP candidates, looked up
 * once and then used by the count and the page alike (rowids on SQLite, ids on PostgreSQL); 'scan':
 * a broad term, tested row by row while walking the sort index, counted up to the cap.
 */
type SearchPlan = { kind: 'none' } | { kind: 'ids'; column: 'rowid' | 'id'; ids: Array<string | number> } | { kind: 'scan' };

function nonStateFilters(db: Executor, eb: Eb, q: UsersListQuery, search: SearchPlan) {
  const conds = [];
  if (q.type) conds.push(eb('users.type', '=', q.type));
  if (q.country) conds.push(eb('users.country', '=', q.country));
  if (q.createdFrom) conds.push(eb('users.createdAt', '>=', q.createdFrom));
  if (q.createdTo) conds.push(eb('users.createdAt', '<=', q.createdTo));
  if (q.assignee === 'none') conds.push(eb('users.assigneeId', 'is', null));
  else if (q.assignee) conds.push(eb('users.assigneeId', '=', q.assignee));
  const text = q.q?.trim();
  if (text && search.kind !== 'none') {
    const pattern = `%${escapeLike(text.toLowerCase())}%`;
    // SQLite's LIKE is case-insensitive for ASCII; PostgreSQL needs ILIKE. E-mails are stored
    // lower-cased, so lower-casing the pattern keeps both engines in agreement.
    const pg = kindOf(db as Kysely<any>) === 'postgres';
    const op = pg ? sql.raw('ilike') : sql.raw('like');
    const like = (col: string) => sql<boolean>`${sql.ref(col)} ${op} ${pattern} escape '\\'`;
    if (search.kind === 'ids') {
      // The candidates the trigram index gave; the LIKE re-check below keeps results exact even if
      // SQLite's index went stale (rowids renumbered by VACUUM — rebuild with
      // `INSERT INTO users_search(users_search) VALUES ('rebuild')`).
      conds.push(search.ids.length ? eb(sql.ref(`users.${search.column}`), 'in', search.ids) : sql<boolean>`1 = 0`);
    } else if (pg) {
      // Lets the planner use the pg_trgm index (migration 20261126_0410, the identical expression).
      conds.push(sql<boolean>`(${PG_SEARCH_DOCUMENT}) ilike ${pattern} escape '\\'`);
    }
    conds.push(eb.or([like('users.email'), like('users.external_user_id'), like('users.capa_user_id'), like('users.alias')]));
  }
  return conds;
}

/**
 * Chooses how to search (3+ characters: the trigram indexes need a trigram). The index is asked
 * once for up to SEARCH_COUNT_CAP + 1 candidates: a selective term is then found through those
 * alone (asking the index again for the count and for the page cost it twice more — at 1,000,000
 * customers a term made of common trigrams takes tens of ms each time); a common one (e.g. a
 * mail domain) is cheaper to find by walking the sort index and testing rows, stopping once a
 * page is full.
 */
async function planSearch(db: Executor, text: string | undefined): Promise<SearchPlan> {
  if (!text) return { kind: 'none' };
  if ([...text].length < 3) return { kind: 'scan' };
  if (kindOf(db as Kysely<any>) === 'postgres') {
    const pattern = `%${escapeLike(text.toLowerCase())}%`;
    const r = await sql<{
      id: string;
    }>`select id from users where (${PG_SEARCH_DOCUMENT}) ilike ${pattern} escape '\\' limit ${SEARCH_COUNT_CAP + 1}`.execute(db);
    return r.rows.length <= SEARCH_COUNT_CAP ? { kind: 'ids', column: 'id', ids: r.rows.map((x) => x.id) } : { kind: 'scan' };
  }
  const phrase = `"${text.replace(/"/g, '""')}"`;
  const r = await sql<{
    rowid: number;
  }>`select rowid from users_search where users_search match ${phrase} limit ${SEARCH_COUNT_CAP + 1}`.execute(db);
  return r.rows.length <= SEARCH_COUNT_CAP ? { kind: 'ids', column: 'rowid', ids: r.rows.map((x) => x.rowid) } : { kind: 'scan' };
}

type ListDir = 'asc' | 'desc';

function listSort(q: UsersListQuery): { sort: SortColumn; dir: ListDir } {
  return { sort: SORTABLE.includes(q.sort as SortColumn) ? (q.sort as SortColumn) : 'createdAt', dir: q.dir === 'asc' ? 'asc' : 'desc' };
}

const listStates = (q: UsersListQuery): KycState[] => [
  ...new Set((q.states ?? []).filter((s) => (KYC_STATES as readonly string[]).includes(s))),
];

/** The list's rows in the list's order, under every filter (no paging): shared by the page and the export. */
function listRowsQuery(db: Executor, q: UsersListQuery, states: KycState[], search: SearchPlan, sort: SortColumn, dir: ListDir) {
  // With exactly one state and a time sort, the (kyc_state, <time>, id) indexes serve the page in
  // order. Otherwise the state test is written so no index is chosen for it: the planner then
  // walks the sort column's index and filters, instead of collecting every row of the selected
  // states and sorting them (measured: 19k-row sorts blew the 60 ms budget at 100k users).
  const stateIndexed = states.length === 1 && (sort === 'createdAt' || sort === 'kycStateChangedAt');
  const stateCond = (eb: Eb) =>
    stateIndexed ? eb('users.kycState', '=', states[0]!) : sql<boolean>`(${sql.ref('users.kyc_state')} || '') in (${sql.join(states)})`;

  let rowsQ = db
    .selectFrom('users')
    .leftJoin('operators', 'operators.id', 'users.assigneeId')
    .select([
      'users.id',
      'users.email',
      'users.externalUserId',
      'users.capaUserId',
      'users.alias',
      'users.type',
      'users.country',
      'users.kycState',
      'users.kycStateChangedAt',
      'users.capaSync',
      'users.linkExpired',
      'users.assigneeId',
      'operators.name as assigneeName',
      'users.createdAt',
    ])
    .where((eb) => eb.and([...nonStateFilters(db, eb, q, search), ...(states.length ? [stateCond(eb)] : [])]))
    .orderBy(`users.${sort}`, dir);
  // A unique tie-breaker keeps paging stable when many rows share the sort value.
  if (sort !== 'createdAt') rowsQ = rowsQ.orderBy('users.createdAt', dir);
  rowsQ = rowsQ.orderBy('users.id', dir);
  return rowsQ;
}

export async function listUsers(db: Executor, q: UsersListQuery): Promise<UsersListResult> {
  const pageSize = Math.min(Math.max(q.pageSize ?? 25, 1), 200);
  const { sort, dir } = listSort(q);
  const states = listStates(q);
  const text = q.q?.trim() || undefined;
  const search = await planSearch(db, text);

  // One aggregate gives both the per-state chips and the total for the selected states. A search
  // that matches very many rows is counted only up to the cap (the UI says "1,000+").
  const capped = search.kind === 'scan';
  const base = db.selectFrom('users').where((eb) => eb.and(nonStateFilters(db, eb, q, search)));
  // Filters the kept counts cover (country, type, unassigned) are answered without counting.
  const kept =
    search.kind === 'none' && !q.createdFrom && !q.createdTo && (!q.assignee || q.assignee === 'none')
      ? await keptCountsByState(db, { type: q.type, country: q.country, unassigned: q.assignee === 'none' })
      : null;
  const grouped = kept
    ? Object.entries(kept).map(([kycState, n]) => ({ kycState: kycState as KycState, n }))
    : capped
      ? await db
          .selectFrom(
            base
              .select('users.kycState')
              .limit(SEARCH_COUNT_CAP + 1)
              .as('m'),
          )
          .select(['m.kycState', (eb) => eb.fn.countAll<number>().as('n')])
          .groupBy('m.kycState')
          .execute()
      : await base
          .select(['users.kycState', (eb) => eb.fn.countAll<number>().as('n')])
          .groupBy('users.kycState')
          .execute();
  const countsByState = Object.fromEntries(KYC_STATES.map((s) => [s, 0])) as Record<KycState, number>;
  for (const g of grouped) countsByState[g.kycState] = Number(g.n);
  const selected: readonly KycState[] = states.length ? states : KYC_STATES;
  const total = selected.reduce((n: number, s) => n + countsByState[s], 0);
  const countsCapped = capped && grouped.reduce((n, g) => n + Number(g.n), 0) > SEARCH_COUNT_CAP;
  const pageCount = Math.max(1, Math.ceil(total / pageSize));
  const page = Math.min(Math.max(q.page ?? 1, 1), pageCount);

  const rowsQ = listRowsQuery(db, q, states, search, sort, dir);
  const rows =
    total === 0
      ? []
      : await rowsQ
          .limit(pageSize)
          .offset((page - 1) * pageSize)
          .execute();
  return { rows: rows as UsersListRow[], total, countsByState, countsCapped, page, pageSize, pageCount };
}

/**
 * Every row the list shows under `q` (all pages), in its order, read in batches: what an export
 * hands over is exactly what the filtered list holds, whatever the count cap says.
 */
export async function* iterateUsersList(db: Executor, q: UsersListQuery, batch = 500): AsyncGenerator<UsersListRow> {
  const { sort, dir } = listSort(q);
  const states = listStates(q);
  const search = await planSearch(db, q.q?.trim() || undefined);
  for (let offset = 0; ; offset += batch) {
    const rows = (await listRowsQuery(db, q, states, search, sort, dir).limit(batch).offset(offset).execute()) as UsersListRow[];
    for (const r of rows) yield r;
    if (rows.length < batch) return;
  }
}

export async function countsByState(db: Executor): Promise<Record<KycState, number>> {
  return keptCountsByState(db);
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
