import { sql } from 'kysely';
import type { AuditEntry } from '../schema.js';
import type { Executor } from '../client.js';
import { csvLine } from '../../lib/csv.js';

/**
 * Reading the audit log: filters shared by the /audit page and its CSV export. Rows are
 * newest first and paged by id (keyset), so an export of millions of rows streams in batches.
 */
export interface AuditFilters {
  /** Operator id, or free text matched against the actor (e-mail or system actor). */
  operator?: string | null;
  /** An exact action (`case.note`) or a group (`case.`). */
  action?: string | null;
  /** `type:id`, `type:`, or an id alone. */
  target?: string | null;
  /** YYYY-MM-DD, UTC, inclusive. */
  from?: string | null;
  to?: string | null;
  outcome?: AuditEntry['outcome'] | null;
}

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function validDay(s: string | null | undefined): s is string {
  if (!s || !ISO_DAY.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

const nextDay = (day: string) => new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString();

/** LIKE with the user's % and _ taken literally. */
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function filtered(db: Executor, f: AuditFilters) {
  let q = db.selectFrom('auditLog');
  const op = f.operator?.trim();
  if (op) {
    if (UUID.test(op)) q = q.where('operatorId', '=', op);
    else q = q.where(sql<boolean>`lower(actor) like ${`%${likeEscape(op.toLowerCase())}%`} escape '\\'`);
  }
  const action = f.action?.trim();
  if (action) {
    if (action.endsWith('.')) q = q.where(sql<boolean>`action like ${`${likeEscape(action)}%`} escape '\\'`);
    else q = q.where('action', '=', action);
  }
  const target = f.target?.trim();
  if (target) {
    const m = /^([a-z_-]+):(.*)$/i.exec(target);
    if (m) {
      q = q.where('targetType', '=', m[1]!);
      if (m[2]) q = q.where('targetId', '=', m[2]);
    } else {
      q = q.where('targetId', '=', target);
    }
  }
  if (validDay(f.from)) q = q.where('at', '>=', `${f.from}T00:00:00.000Z`);
  if (validDay(f.to)) q = q.where('at', '<', nextDay(f.to));
  if (f.outcome) q = q.where('outcome', '=', f.outcome);
  return q;
}

export interface AuditPage {
  rows: AuditEntry[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  nextBefore: number | null;
}

export async function listAudit(db: Executor, f: AuditFilters, opts: { before?: number | null; limit?: number } = {}): Promise<AuditPage> {
  const limit = Math.min(Math.max(opts.limit ?? 50, 1), 500);
  let q = filtered(db, f).selectAll();
  if (opts.before) q = q.where('id', '<', opts.before);
  const rows = await q
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  return { rows: page, nextBefore: more ? page[page.length - 1]!.id : null };
}

export async function countAudit(db: Executor, f: AuditFilters): Promise<number> {
  const r = await filtered(db, f)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Every matching row, newest first, read in batches (constant memory). */
export async function* iterateAudit(db: Executor, f: AuditFilters, batch = 1000): AsyncGenerator<AuditEntry> {
  let before: number | null = null;
  for (;;) {
    const page: AuditPage = await listAudit(db, f, { before, limit: Math.min(batch, 500) });
    for (const r of page.rows) yield r;
    if (page.nextBefore === null) return;
    before = page.nextBefore;
  }
}

export const AUDIT_CSV_COLUMNS = [
  'id',
  'at',
  'actor',
  'operator_id',
  'action',
  'target_type',
  'target_id',
  'outcome',
  'detail',
  'ip',
  'prev_hash',
  'hash',
] as const;

/** One audit entry as a CSV line (lib/csv.ts: formula-safe fields, the log holds text typed by others). */
export function auditCsvRow(r: AuditEntry): string {
  return csvLine([r.id, r.at, r.actor, r.operatorId, r.action, r.targetType, r.targetId, r.outcome, r.detail, r.ip, r.prevHash, r.hash]);
}
