import { sql, type RawBuilder } from 'kysely';
import type { DbKind } from './client.js';

export interface RowsColumn {
  name: string;
  /** Its PostgreSQL type (the array parameter is cast to `<type>[]`). */
  pg: 'text' | 'int';
}

/**
 * Rows given by the caller as a FROM item named `alias`, so one UPDATE … FROM can write a different
 * value to each row of a batch. PostgreSQL: unnest over one array parameter per column (the
 * statement's text is the same whatever the number of rows). SQLite: a VALUES list (SQLite names
 * its columns column1, column2…; they are renamed).
 */
export function rowsAs(kind: DbKind, alias: string, columns: RowsColumn[], rows: unknown[][]): RawBuilder<unknown> {
  const names = sql.raw(columns.map((c) => c.name).join(', '));
  if (kind === 'postgres') {
    const arrays = columns.map((c, i) => sql`${rows.map((r) => r[i] ?? null)}::${sql.raw(c.pg)}[]`);
    return sql`unnest(${sql.join(arrays)}) as ${sql.raw(alias)}(${names})`;
  }
  const renamed = sql.raw(columns.map((c, i) => `column${i + 1} as ${c.name}`).join(', '));
  const values = sql.join(rows.map((r) => sql`(${sql.join(r.map((v) => v ?? null))})`));
  return sql`(select ${renamed} from (values ${values})) as ${sql.raw(alias)}`;
}
