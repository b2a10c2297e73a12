import { sql } from 'kysely';
import { kindOf, type Db, type Executor } from '../client.js';
import { KYC_STATES, type KycState } from '../schema.js';

/**
 * Customers per state without counting them: user_counts plus the deltas the triggers on users
 * appended since the last fold (migration 20261130_0201_user_counts). Exact, in one statement, so
 * one snapshot: a change is either in a delta or folded into user_counts, never both or neither.
 */
export interface CountFilter {
  type?: 'INDIVIDUAL' | 'BUSINESS' | null;
  country?: 'MX' | 'DO' | null;
  /** Only customers nobody is assigned to. */
  unassigned?: boolean;
}

export async function keptCountsByState(db: Executor, f: CountFilter = {}): Promise<Record<KycState, number>> {
  const where = (t: 'user_counts' | 'user_count_deltas') =>
    sql.join(
      [
        sql`true`,
        ...(f.type ? [sql`${sql.ref(`${t}.type`)} = ${f.type}`] : []),
        ...(f.country ? [sql`${sql.ref(`${t}.country`)} = ${f.country}`] : []),
        ...(f.unassigned ? [sql`${sql.ref(`${t}.assigned`)} = 0`] : []),
      ],
      sql` and `,
    );
  const rows = await sql<{ state: KycState; n: number | string }>`
    select kyc_state as state, sum(n) as n from (
      select kyc_state, n from user_counts where ${where('user_counts')}
      union all
      select kyc_state, d as n from user_count_deltas where ${where('user_count_deltas')}
    ) c group by kyc_state`.execute(db);
  const out = Object.fromEntries(KYC_STATES.map((s) => [s, 0])) as Record<KycState, number>;
  for (const r of rows.rows) if (r.state in out) out[r.state] = Number(r.n);
  return out;
}

/**
 * Folds the appended deltas into user_counts (the worker's `fold-user-counts`, every few seconds)
 * so a count reads at most a few seconds of changes. Returns how many deltas it folded.
 */
export async function foldUserCounts(db: Db): Promise<number> {
  if (kindOf(db) === 'postgres') {
    // One statement: the deltas this snapshot sees are deleted and added in; ones committed
    // meanwhile stay for the next fold. Two folds at once: the second waits on the rows the first
    // deletes and then skips them.
    const r = await sql<{ folded: number | string }>`
      with gone as (delete from user_count_deltas returning kyc_state, type, country, assigned, d),
      summed as (select kyc_state, type, country, assigned, sum(d) as d, count(*) as k from gone group by 1, 2, 3, 4),
      upserted as (
        insert into user_counts as c (kyc_state, type, country, assigned, n)
        select kyc_state, type, country, assigned, d from summed
        on conflict (kyc_state, type, country, assigned) do update set n = c.n + excluded.n
        returning 1
      )
      select coalesce((select sum(k) from summed), 0) as folded, (select count(*) from upserted) as u`.execute(db);
    return Number(r.rows[0]?.folded ?? 0);
  }
  return db.transaction().execute(async (trx) => {
    const last = await trx
      .selectFrom('userCountDeltas')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    const upTo = Number(last?.id ?? 0);
    if (!upTo) return 0;
    await sql`insert into user_counts (kyc_state, type, country, assigned, n)
      select kyc_state, type, country, assigned, sum(d) from user_count_deltas where id <= ${upTo} group by 1, 2, 3, 4
      on conflict (kyc_state, type, country, assigned) do update set n = n + excluded.n`.execute(trx);
    const gone = await trx.deleteFrom('userCountDeltas').where('id', '<=', upTo).executeTakeFirst();
    return Number(gone.numDeletedRows);
  });
}
