import { sql } from 'kysely';
import type { Db } from '../client.js';

/** Tables whose rows carry a `status` column counted for /metrics. */
export type StatusTable = 'imports' | 'import_rows' | 'notifications';

/** Rows of `table` by status. */
export async function statusCounts(db: Db, table: StatusTable): Promise<Array<{ status: string; n: number }>> {
  const rows = await sql<{
    status: string;
    n: number | string;
  }>`select status, count(*) as n from ${sql.table(table)} group by status`.execute(db);
  return rows.rows.map((r) => ({ status: r.status, n: Number(r.n) }));
}
