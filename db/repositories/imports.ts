import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Import, ImportRow, ImportRowStatus, ImportStatus, NewImportRow, NotificationStatus } from '../schema.js';
import { storeMessage, storedMessage } from '../../lib/stored-message.js';
import { isoAgo, nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

/**
 * Bulk CSV imports. The rows table is the system of record for the work: rows are
 * stored at the dry run, claimed (pending → queued, generation + 1) before a job is added, and
 * every job checks the row's generation, so a stale or duplicated job never acts twice.
 * Reasons (a row's, an import's status) are stored messages (lib/stored-message.ts), worded by
 * the page in the reader's language.
 */

export const ACTIVE_ROW_STATUSES: ImportRowStatus[] = ['pending', 'queued', 'linking'];

export interface NewImport {
  fileName: string;
  fileSha256: string;
  fileBytes: number;
  delimiter: string;
  createdBy: string | null;
}

export async function createImport(db: Executor, input: NewImport): Promise<string> {
  const now = nowIso();
  const id = randomUUID();
  await db
    .insertInto('imports')
    .values({
      id,
      ...input,
      status: 'staged',
      pauseKind: null,
      statusReason: null,
      totalRows: 0,
      validRows: 0,
      invalidRows: 0,
      unknownColumns: '[]',
      summary: '{}',
      createdAt: now,
      committedBy: null,
      committedAt: null,
      statusChangedAt: now,
      finishedAt: null,
      updatedAt: now,
    })
    .execute();
  return id;
}

const INSERT_CHUNK = 1000;

export async function insertImportRows(db: Executor, rows: NewImportRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await db
      .insertInto('importRows')
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
}

export async function finishStaging(
  db: Executor,
  id: string,
  s: {
    fileSha256: string;
    fileBytes: number;
    delimiter: string;
    totalRows: number;
    validRows: number;
    invalidRows: number;
    unknownColumns: string[];
    byReason: Record<string, number>;
  },
): Promise<void> {
  await db
    .updateTable('imports')
    .set({
      fileSha256: s.fileSha256,
      // Known only once the header was read: the import row is created before.
      delimiter: s.delimiter,
      fileBytes: s.fileBytes,
      totalRows: s.totalRows,
      validRows: s.validRows,
      invalidRows: s.invalidRows,
      unknownColumns: JSON.stringify(s.unknownColumns),
      summary: JSON.stringify({ byReason: s.byReason }),
      updatedAt: nowIso(),
    })
    .where('id', '=', id)
    .execute();
}

/** Users already here, by externalUserId and by (normalised) e-mail → our user's externalUserId. */
export async function existingUsers(
  db: Executor,
  externalIds: string[],
  emails: string[],
): Promise<{ byExternalId: Map<string, string>; byEmail: Map<string, string> }> {
  const byExternalId = new Map<string, string>();
  const byEmail = new Map<string, string>();
  for (let i = 0; i < externalIds.length; i += 500) {
    const part = externalIds.slice(i, i + 500);
    const rows = await db.selectFrom('users').select(['externalUserId']).where('externalUserId', 'in', part).execute();
    for (const r of rows) byExternalId.set(r.externalUserId, r.externalUserId);
  }
  for (let i = 0; i < emails.length; i += 500) {
    const part = emails.slice(i, i + 500);
    const rows = await db.selectFrom('users').select(['externalUserId', 'email']).where('email', 'in', part).execute();
    for (const r of rows) byEmail.set(r.email, r.externalUserId);
  }
  return { byExternalId, byEmail };
}

export async function findImport(db: Executor, id: string): Promise<Import | undefined> {
  return db.selectFrom('imports').selectAll().where('id', '=', id).executeTakeFirst();
}

/** An earlier import of the very same file (by SHA-256), to warn at the dry run. */
export async function findSameFile(db: Executor, sha: string, exceptId: string): Promise<Import | undefined> {
  return db
    .selectFrom('imports')
    .selectAll()
    .where('fileSha256', '=', sha)
    .where('id', '<>', exceptId)
    .where('status', '<>', 'discarded')
    .orderBy('createdAt', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function listImports(
  db: Executor,
  q: { page: number; pageSize: number; status?: ImportStatus | null },
): Promise<{ rows: Import[]; total: number }> {
  let base = db.selectFrom('imports');
  if (q.status) base = base.where('status', '=', q.status);
  const [rows, count] = await Promise.all([
    base
      .selectAll()
      .orderBy('createdAt', 'desc')
      .orderBy('id', 'desc')
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize)
      .execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: Number(count.n) };
}

export type RowCounts = Record<ImportRowStatus, number>;

export async function rowCounts(db: Executor, importId: string): Promise<RowCounts> {
  const rows = await db
    .selectFrom('importRows')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('importId', '=', importId)
    .groupBy('status')
    .execute();
  const out: RowCounts = { invalid: 0, pending: 0, queued: 0, linking: 0, done: 0, failed: 0, cancelled: 0 };
  for (const r of rows) out[r.status] = Number(r.n);
  return out;
}

export interface ImportProgress {
  counts: RowCounts;
  /** Valid rows: everything but `invalid`. */
  total: number;
  done: number;
  failed: number;
  cancelled: number;
  remaining: number;
  /** Rows finished per second over the last minute (null before the first one). */
  ratePerSec: number | null;
  etaSeconds: number | null;
}

export async function importProgress(db: Executor, importId: string, now = Date.now()): Promise<ImportProgress> {
  const counts = await rowCounts(db, importId);
  const windowMs = 60_000;
  const recent = await db
    .selectFrom('importRows')
    .select([(eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.min('finishedAt').as('first')])
    .where('importId', '=', importId)
    .where('finishedAt', '>=', isoAgo(windowMs, now))
    .executeTakeFirstOrThrow();
  const n = Number(recent.n);
  const remaining = counts.pending + counts.queued + counts.linking;
  let ratePerSec: number | null = null;
  if (n > 0 && recent.first) {
    const span = Math.max(1000, now - Date.parse(String(recent.first)));
    ratePerSec = n / (span / 1000);
  }
  return {
    counts,
    total: counts.pending + counts.queued + counts.linking + counts.done + counts.failed + counts.cancelled,
    done: counts.done,
    failed: counts.failed,
    cancelled: counts.cancelled,
    remaining,
    ratePerSec,
    etaSeconds: ratePerSec && remaining > 0 ? Math.ceil(remaining / ratePerSec) : remaining === 0 ? 0 : null,
  };
}

// ---------------------------------------------------------------- link e-mails of import rows

/*
 * A row that asks for a link gets it through generate-link with `notify`, which queues one ledger
 * row keyed `link:<linkId>` (jobs/notifications/programme.ts, onLinkIssuedNotify); the import row
 * keeps that linkId. The dedupe key is unique and indexed, so each row's e-mail is one index probe.
 */
const LINK_MESSAGE_KEY = sql<string>`'link:' || ${sql.ref('importRows.linkId')}`;

export interface RowEmail {
  notificationId: string;
  status: NotificationStatus;
  /** Why it failed or was cancelled (failed/cancelled), or the last transient error (queued). */
  reason: string | null;
  attempts: number;
  at: string | null;
}

/** The link e-mail of each given row (rows without one are absent from the map). */
export async function rowEmails(db: Executor, importId: string, rowNos: number[]): Promise<Map<number, RowEmail>> {
  const out = new Map<number, RowEmail>();
  for (let i = 0; i < rowNos.length; i += 500) {
    const rows = await db
      .selectFrom('importRows')
      .innerJoin('notifications', (join) => join.on('notifications.dedupeKey', '=', LINK_MESSAGE_KEY))
      .select([
        'importRows.rowNo',
        'notifications.id',
        'notifications.status',
        'notifications.failureReason',
        'notifications.lastError',
        'notifications.attempts',
        'notifications.sentAt',
        'notifications.failedAt',
        'notifications.cancelledAt',
        'notifications.updatedAt',
      ])
      .where('importRows.importId', '=', importId)
      .where('importRows.rowNo', 'in', rowNos.slice(i, i + 500))
      .where('importRows.linkId', 'is not', null)
      .execute();
    for (const r of rows) {
      out.set(Number(r.rowNo), {
        notificationId: r.id,
        status: r.status,
        reason: r.status === 'queued' ? r.lastError : r.failureReason,
        attempts: Number(r.attempts),
        at: r.sentAt ?? r.failedAt ?? r.cancelledAt ?? r.updatedAt,
      });
    }
  }
  return out;
}

export interface EmailCounts {
  /** Rows done that asked for a link: each should have one link e-mail. */
  expected: number;
  sent: number;
  failed: number;
  /** Queued or retrying. */
  pending: number;
  cancelled: number;
  /** Expected but no e-mail was ever queued for it. */
  missing: number;
}

export async function emailCounts(db: Executor, importId: string): Promise<EmailCounts> {
  const [expected, byStatus] = await Promise.all([
    db
      .selectFrom('importRows')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('importId', '=', importId)
      .where('status', '=', 'done')
      .where('sendLink', '=', 1)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('importRows')
      .innerJoin('notifications', (join) => join.on('notifications.dedupeKey', '=', LINK_MESSAGE_KEY))
      .select(['notifications.status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('importRows.importId', '=', importId)
      .where('importRows.linkId', 'is not', null)
      .groupBy('notifications.status')
      .execute(),
  ]);
  const c: EmailCounts = { expected: Number(expected.n), sent: 0, failed: 0, pending: 0, cancelled: 0, missing: 0 };
  for (const r of byStatus) {
    if (r.status === 'queued') c.pending += Number(r.n);
    else c[r.status] += Number(r.n);
  }
  c.missing = Math.max(0, c.expected - c.sent - c.failed - c.pending - c.cancelled);
  return c;
}

/** Per import: how many of its link e-mails failed (for the list of imports). */
export async function failedEmailsByImport(db: Executor, importIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (importIds.length === 0) return out;
  const rows = await db
    .selectFrom('importRows')
    .innerJoin('notifications', (join) => join.on('notifications.dedupeKey', '=', LINK_MESSAGE_KEY))
    .select(['importRows.importId', (eb) => eb.fn.countAll<number>().as('n')])
    .where('importRows.importId', 'in', importIds)
    .where('importRows.linkId', 'is not', null)
    .where('notifications.status', '=', 'failed')
    .groupBy('importRows.importId')
    .execute();
  for (const r of rows) out.set(r.importId, Number(r.n));
  return out;
}

export type RowFilter = 'all' | 'valid' | 'problems' | ImportRowStatus | 'email_failed' | 'email_pending';

export async function listImportRows(
  db: Executor,
  importId: string,
  q: { filter: RowFilter; page: number; pageSize: number },
): Promise<{ rows: ImportRow[]; total: number }> {
  let base = db.selectFrom('importRows').where('importId', '=', importId);
  if (q.filter === 'problems') base = base.where('status', 'in', ['invalid', 'failed']);
  else if (q.filter === 'valid') base = base.where('status', '<>', 'invalid');
  else if (q.filter === 'email_failed' || q.filter === 'email_pending') {
    const wanted: NotificationStatus = q.filter === 'email_failed' ? 'failed' : 'queued';
    base = base
      .where('linkId', 'is not', null)
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom('notifications')
            .select('notifications.id')
            .where('notifications.dedupeKey', '=', LINK_MESSAGE_KEY)
            .where('notifications.status', '=', wanted),
        ),
      );
  } else if (q.filter !== 'all') base = base.where('status', '=', q.filter);
  const [rows, count] = await Promise.all([
    base
      .selectAll()
      .orderBy('rowNo', 'asc')
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize)
      .execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: Number(count.n) };
}

/** Rows in file order after `afterRowNo`, for the CSV downloads (paged, never all in memory). */
export async function rowsForExport(
  db: Executor,
  importId: string,
  kind: 'results' | 'errors',
  afterRowNo: number,
  limit: number,
): Promise<ImportRow[]> {
  let q = db.selectFrom('importRows').selectAll().where('importId', '=', importId).where('rowNo', '>', afterRowNo);
  if (kind === 'errors') q = q.where('status', 'in', ['invalid', 'failed']);
  return q.orderBy('rowNo', 'asc').limit(limit).execute();
}

export async function getRow(db: Executor, importId: string, rowNo: number): Promise<ImportRow | undefined> {
  return db.selectFrom('importRows').selectAll().where('importId', '=', importId).where('rowNo', '=', rowNo).executeTakeFirst();
}

// ---------------------------------------------------------------- import status transitions

async function transition(
  db: Executor,
  id: string,
  from: ImportStatus[],
  set: Partial<Pick<Import, 'status' | 'pauseKind' | 'statusReason' | 'committedBy' | 'committedAt' | 'finishedAt' | 'capaErrorStreak'>>,
): Promise<boolean> {
  const now = nowIso();
  const r = await db
    .updateTable('imports')
    .set({ ...set, statusChangedAt: now, updatedAt: now })
    .where('id', '=', id)
    .where('status', 'in', from)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** staged → running. False when it was not staged (double click, someone else committed). */
export async function commitImport(db: Executor, id: string, operatorId: string | null): Promise<boolean> {
  return transition(db, id, ['staged'], {
    status: 'running',
    committedBy: operatorId,
    committedAt: nowIso(),
    statusReason: null,
    capaErrorStreak: 0,
  });
}

/** staged → discarded; the staged rows are deleted (they were never used). */
export async function discardImport(db: Executor, id: string): Promise<boolean> {
  const ok = await transition(db, id, ['staged'], {
    status: 'discarded',
    statusReason: storeMessage(storedMessage('imports:status_reasons.discarded')),
    finishedAt: nowIso(),
  });
  if (ok) await db.deleteFrom('importRows').where('importId', '=', id).execute();
  return ok;
}

export async function pauseImport(db: Executor, id: string, kind: 'operator' | 'outage', reason: string): Promise<boolean> {
  return transition(db, id, ['running'], { status: 'paused', pauseKind: kind, statusReason: reason });
}

export async function resumeImport(db: Executor, id: string, opts: { streak?: number; reason?: string | null } = {}): Promise<boolean> {
  return transition(db, id, ['paused'], {
    status: 'running',
    pauseKind: null,
    statusReason: opts.reason ?? null,
    capaErrorStreak: opts.streak ?? 0,
  });
}

/** running|paused → cancelled. Rows not yet started become `cancelled`; rows in flight finish their step. */
export async function cancelImport(db: Executor, id: string): Promise<boolean> {
  const ok = await transition(db, id, ['running', 'paused'], {
    status: 'cancelled',
    pauseKind: null,
    statusReason: storeMessage(storedMessage('imports:status_reasons.cancelled')),
    finishedAt: nowIso(),
  });
  if (ok) {
    const now = nowIso();
    await db
      .updateTable('importRows')
      .set({
        status: 'cancelled',
        reason: storeMessage([storedMessage('imports:row_reasons.cancelled_before_run')]),
        reasonCode: 'cancelled',
        finishedAt: now,
        updatedAt: now,
      })
      .where('importId', '=', id)
      .where('status', '=', 'pending')
      .execute();
  }
  return ok;
}

/** Failed rows go back to pending; a finished import runs again. Returns the number of rows. */
export async function retryFailedRows(db: Executor, id: string): Promise<number> {
  return db.isTransaction ? retryFailedIn(db, id) : db.transaction().execute((trx) => retryFailedIn(trx, id));
}

async function retryFailedIn(db: Executor, id: string): Promise<number> {
  const now = nowIso();
  const r = await db
    .updateTable('importRows')
    .set({ status: 'pending', attempts: 0, reason: null, reasonCode: null, finishedAt: null, updatedAt: now })
    .where('importId', '=', id)
    .where('status', '=', 'failed')
    .executeTakeFirst();
  const n = Number(r.numUpdatedRows);
  if (n > 0) {
    await db
      .updateTable('imports')
      .set({
        status: 'running',
        pauseKind: null,
        statusReason: null,
        finishedAt: null,
        capaErrorStreak: 0,
        statusChangedAt: now,
        updatedAt: now,
      })
      .where('id', '=', id)
      .where('status', 'in', ['completed', 'running'])
      .execute();
  }
  return n;
}

/** running → completed when no row is left to work on (conditional: safe to call concurrently). */
export async function completeIfDone(db: Executor, id: string): Promise<boolean> {
  const now = nowIso();
  const r = await db
    .updateTable('imports')
    .set({ status: 'completed', finishedAt: now, statusChangedAt: now, updatedAt: now, statusReason: null })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('importRows').select('rowNo').where('importId', '=', id).where('status', 'in', ACTIVE_ROW_STATUSES))),
    )
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function importsWithStatus(db: Executor, status: ImportStatus): Promise<Import[]> {
  return db.selectFrom('imports').selectAll().where('status', '=', status).orderBy('createdAt', 'asc').limit(100).execute();
}

// ---------------------------------------------------------------- row claims and outcomes

export async function inFlightCount(db: Executor, importId: string): Promise<number> {
  const r = await db
    .selectFrom('importRows')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('importId', '=', importId)
    .where('status', 'in', ['queued', 'linking'])
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The rows whose job is queued or running (a pause or cancel takes their waiting jobs out). */
export async function inFlightRows(db: Executor, importId: string): Promise<Array<Pick<ImportRow, 'rowNo' | 'gen' | 'status'>>> {
  return db
    .selectFrom('importRows')
    .select(['rowNo', 'gen', 'status'])
    .where('importId', '=', importId)
    .where('status', 'in', ['queued', 'linking'])
    .execute();
}

/** pending → queued for up to `limit` rows in file order; each claimed row's generation goes up by one. */
export async function claimPendingRows(db: Executor, importId: string, limit: number): Promise<Array<{ rowNo: number; gen: number }>> {
  if (limit <= 0) return [];
  const candidates = await db
    .selectFrom('importRows')
    .select('rowNo')
    .where('importId', '=', importId)
    .where('status', '=', 'pending')
    .orderBy('rowNo', 'asc')
    .limit(limit)
    .execute();
  if (candidates.length === 0) return [];
  const now = nowIso();
  const out: Array<{ rowNo: number; gen: number }> = [];
  for (let i = 0; i < candidates.length; i += 500) {
    const part = candidates.slice(i, i + 500).map((c) => c.rowNo);
    const claimed = await db
      .updateTable('importRows')
      .set({ status: 'queued', gen: sql`gen + 1`, enqueuedAt: now, updatedAt: now })
      .where('importId', '=', importId)
      .where('rowNo', 'in', part)
      .where('status', '=', 'pending')
      .returning(['rowNo', 'gen'])
      .execute();
    out.push(...claimed.map((c) => ({ rowNo: Number(c.rowNo), gen: Number(c.gen) })));
  }
  return out.sort((a, b) => a.rowNo - b.rowNo);
}

/** Rows queued (or waiting for their link job) longer than `olderThanMs`: their job may be lost. */
export async function staleInFlightRows(db: Executor, importId: string, olderThanMs: number, limit = 500): Promise<ImportRow[]> {
  return db
    .selectFrom('importRows')
    .selectAll()
    .where('importId', '=', importId)
    .where('status', 'in', ['queued', 'linking'])
    .where('enqueuedAt', '<', isoAgo(olderThanMs))
    .orderBy('rowNo', 'asc')
    .limit(limit)
    .execute();
}

export async function touchEnqueued(db: Executor, importId: string, rowNos: number[]): Promise<void> {
  if (rowNos.length === 0) return;
  const now = nowIso();
  for (let i = 0; i < rowNos.length; i += 500) {
    await db
      .updateTable('importRows')
      .set({ enqueuedAt: now })
      .where('importId', '=', importId)
      .where('rowNo', 'in', rowNos.slice(i, i + 500))
      .execute();
  }
}

type RowKey = { importId: string; rowNo: number; gen: number };

/** Updates a row only if it is still at this generation and in one of `from` (a stale job changes nothing). */
export async function updateRowIf(
  db: Executor,
  key: RowKey,
  from: ImportRowStatus[],
  set: Partial<Omit<ImportRow, 'importId' | 'rowNo'>>,
): Promise<boolean> {
  const r = await db
    .updateTable('importRows')
    .set({ ...set, updatedAt: nowIso() })
    .where('importId', '=', key.importId)
    .where('rowNo', '=', key.rowNo)
    .where('gen', '=', key.gen)
    .where('status', 'in', from)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function finishRow(
  db: Executor,
  key: RowKey,
  from: ImportRowStatus[],
  outcome: {
    status: 'done' | 'failed' | 'cancelled';
    reasonCode?: string | null;
    reason?: string | null;
    capaUserId?: string | null;
    linkId?: string | null;
  },
): Promise<boolean> {
  return updateRowIf(db, key, from, { ...outcome, finishedAt: nowIso() });
}

/** A row goes back to the pool (paused import, transient Capa failure); the relay queues it again. */
export async function releaseRow(
  db: Executor,
  key: RowKey,
  from: ImportRowStatus[],
  opts: { reason?: string | null; countAttempt?: boolean } = {},
): Promise<boolean> {
  const r = await db
    .updateTable('importRows')
    .set({
      status: 'pending',
      enqueuedAt: null,
      updatedAt: nowIso(),
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      ...(opts.countAttempt ? { attempts: sql`attempts + 1` } : {}),
    })
    .where('importId', '=', key.importId)
    .where('rowNo', '=', key.rowNo)
    .where('gen', '=', key.gen)
    .where('status', 'in', from)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** A Capa call succeeded: the outage streak starts over (written only when it was not zero). */
export async function capaSucceeded(db: Executor, importId: string): Promise<void> {
  await db.updateTable('imports').set({ capaErrorStreak: 0 }).where('id', '=', importId).where('capaErrorStreak', '<>', 0).execute();
}

/**
 * A retryable Capa failure (5xx, network, timeout). At `threshold` consecutive failures the
 * import pauses with the reason on screen instead of failing row after row (`pauseReason` words
 * it, given the streak). Returns true when this call paused it.
 */
export async function capaFailed(
  db: Executor,
  importId: string,
  threshold: number,
  pauseReason: (failures: number) => string,
): Promise<boolean> {
  await db
    .updateTable('imports')
    .set({ capaErrorStreak: sql`capa_error_streak + 1` })
    .where('id', '=', importId)
    .execute();
  const imp = await db.selectFrom('imports').select(['capaErrorStreak', 'status']).where('id', '=', importId).executeTakeFirst();
  if (!imp || imp.status !== 'running' || imp.capaErrorStreak < threshold) return false;
  return pauseImport(db, importId, 'outage', pauseReason(Number(imp.capaErrorStreak)));
}
