/**
 * URL → a list's page, page size and sort, for every paged table the console shows. Unknown or
 * malformed values fall back to the defaults, never an error: a shared link always opens.
 */

export type SortDir = 'asc' | 'desc';

export interface Paging {
  page: number;
  pageSize: number;
}

export interface Sorting<S extends string> {
  sort: S;
  dir: SortDir;
}

/** A page number: digits only, at least 1, at most `max`. */
export function pageNumber(v: string | null, max = 1_000_000): number {
  return v && /^\d{1,7}$/.test(v) ? Math.min(max, Math.max(1, Number(v))) : 1;
}

/** `page` and `size` (one of `sizes`, else `defaultSize`). */
export function parsePaging(sp: URLSearchParams, opts: { sizes: readonly number[]; defaultSize: number; maxPage?: number }): Paging {
  const size = sp.get('size');
  const n = size && /^\d{1,6}$/.test(size) ? Number(size) : opts.defaultSize;
  return { page: pageNumber(sp.get('page'), opts.maxPage), pageSize: opts.sizes.includes(n) ? n : opts.defaultSize };
}

/** `sort` (one of `columns`, else `defaultSort`) and `dir` (asc or desc, else `defaultDir`). */
export function parseSorting<S extends string>(
  sp: URLSearchParams,
  columns: readonly S[],
  defaultSort: S,
  defaultDir: SortDir = 'desc',
): Sorting<S> {
  const sort = sp.get('sort');
  const dir = sp.get('dir');
  return {
    sort: (columns as readonly string[]).includes(sort ?? '') ? (sort as S) : defaultSort,
    dir: dir === 'asc' || dir === 'desc' ? dir : defaultDir,
  };
}

/** Pages needed for `total` rows (at least one, so an empty list still has a page 1). */
export const pageCount = (total: number, pageSize: number): number => Math.max(1, Math.ceil(total / pageSize));

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

/** A YYYY-MM-DD day as given, or null. */
export const isoDay = (v: string | null | undefined): string | null => (v && ISO_DAY.test(v) ? v : null);
/** The first instant of a YYYY-MM-DD day (UTC), or null. */
export const dayStart = (v: string | null | undefined): string | null => (isoDay(v) ? `${v}T00:00:00.000Z` : null);
/** The last instant of a YYYY-MM-DD day (UTC), or null. */
export const dayEnd = (v: string | null | undefined): string | null => (isoDay(v) ? `${v}T23:59:59.999Z` : null);
