import { unstable_createMemoryUploadHandler, unstable_parseMultipartFormData } from '@remix-run/node';
import { z } from 'zod';
import {
  cancelImport,
  commitImport,
  discardImport,
  emailCounts,
  failedEmailsByImport,
  findImport,
  findSameFile,
  importProgress,
  listImportRows,
  listImports,
  pauseImport,
  resumeImport,
  retryFailedRows,
  rowEmails,
  rowsForExport,
  type RowEmail,
  type RowFilter,
} from '../db/repositories/imports.js';
import { IMPORT_ROW_STATUSES, IMPORT_STATUSES, type ImportRow, type ImportStatus } from '../db/schema.js';
import { drainImport, feedImport } from '../jobs/imports/orchestration.js';
import { IMPORT_FIELDS, ImportFileError, TEMPLATE_CSV } from '../jobs/imports/parser.js';
import { stageImport } from '../jobs/imports/stage.js';
import { REASON_LABELS } from '../jobs/imports/validator.js';
import { auditAction, type SignedIn } from './auth.server';
import { pageNumber, parsePaging } from './list-params.server';
import { services } from './services.server';

/** Facade for the /imports routes: db/ and jobs/ are reached only from here. */

export type UploadResult = { ok: true; importId: string } | { ok: false; error: string; status: number };

/**
 * Stages an uploaded CSV (dry run). The `file` field is read from the form the CSRF guard already
 * parsed; a malformed file answers with the reader's message and stores nothing.
 */
export async function stageUpload(request: Request, who: SignedIn & { form: FormData }): Promise<UploadResult> {
  const { db, env } = await services();
  let file = who.form.get('file');
  if (!(file instanceof File)) {
    // The guard did not hand over the form (e.g. the token came as a header): parse it here, bounded.
    const form = await unstable_parseMultipartFormData(
      request,
      unstable_createMemoryUploadHandler({ maxPartSize: env.IMPORT_MAX_BYTES + 1 }),
    ).catch(() => null);
    file = form?.get('file') ?? null;
  }
  if (!(file instanceof File) || (file.size === 0 && !file.name)) {
    return { ok: false, status: 400, error: 'Choose a CSV file to upload.' };
  }
  if (file.size > env.IMPORT_MAX_BYTES) {
    const limit =
      env.IMPORT_MAX_BYTES >= 1024 * 1024
        ? `${Math.floor(env.IMPORT_MAX_BYTES / 1024 / 1024)} MB`
        : `${Math.floor(env.IMPORT_MAX_BYTES / 1024)} KB`;
    return { ok: false, status: 413, error: `The file is larger than ${limit}. Split it into smaller files and import them one by one.` };
  }
  try {
    const r = await stageImport(db, {
      source: file.stream() as unknown as AsyncIterable<Uint8Array>,
      fileName: file.name || 'upload.csv',
      createdBy: who.operator.id,
      limits: { maxBytes: env.IMPORT_MAX_BYTES, maxRows: env.IMPORT_MAX_ROWS },
    });
    await auditAction(request, who, {
      action: 'import.stage',
      targetType: 'import',
      targetId: r.importId,
      outcome: 'ok',
      detail: { fileName: file.name, rows: r.totalRows, valid: r.validRows, invalid: r.invalidRows, unknownColumns: r.unknownColumns },
    });
    return { ok: true, importId: r.importId };
  } catch (err) {
    if (err instanceof ImportFileError) {
      await auditAction(request, who, {
        action: 'import.stage',
        targetType: 'import',
        targetId: null,
        outcome: 'error',
        detail: { fileName: file.name, code: err.code },
      });
      return { ok: false, status: 422, error: err.message };
    }
    throw err;
  }
}

// ------------------------------------------------------------------ list

export async function importsListData(sp: URLSearchParams) {
  const { db } = await services();
  const status = sp.get('status');
  const page = pageNumber(sp.get('page'));
  const pageSize = 25;
  const st = (IMPORT_STATUSES as readonly string[]).includes(status ?? '') ? (status as ImportStatus) : null;
  const r = await listImports(db, { page, pageSize, status: st });
  const failedEmails = await failedEmailsByImport(
    db,
    r.rows.filter((i) => i.committedAt).map((i) => i.id),
  );
  return {
    rows: r.rows.map((i) => ({
      id: i.id,
      fileName: i.fileName,
      status: i.status,
      totalRows: i.totalRows,
      validRows: i.validRows,
      invalidRows: i.invalidRows,
      failedEmails: failedEmails.get(i.id) ?? 0,
      createdAt: i.createdAt,
      committedAt: i.committedAt,
      finishedAt: i.finishedAt,
    })),
    total: r.total,
    page,
    pageSize,
    status: st,
  };
}

// ------------------------------------------------------------------ detail

const FILTERS = ['all', 'valid', 'problems', ...IMPORT_ROW_STATUSES, 'email_failed', 'email_pending'] as const;

export async function importDetailData(id: string, sp: URLSearchParams) {
  const { db, env } = await services();
  const imp = await findImport(db, id);
  if (!imp) throw new Response('No such import.', { status: 404 });
  // Problems first: at the dry run that is what the operator has to read.
  const filterRaw = sp.get('rows') ?? (imp.invalidRows > 0 || imp.status !== 'staged' ? 'problems' : 'all');
  const filter = ((FILTERS as readonly string[]).includes(filterRaw) ? filterRaw : 'all') as RowFilter;
  const { page, pageSize } = parsePaging(sp, { sizes: [25, 50, 100], defaultSize: 50 });
  const [progress, rows, sameFile, emails] = await Promise.all([
    importProgress(db, id),
    listImportRows(db, id, { filter, page, pageSize }),
    imp.status === 'staged' ? findSameFile(db, imp.fileSha256, id) : Promise.resolve(undefined),
    imp.status === 'staged' || imp.status === 'discarded' ? Promise.resolve(null) : emailCounts(db, id),
  ]);
  const mails = emails
    ? await rowEmails(
        db,
        id,
        rows.rows.filter((r) => r.linkId).map((r) => r.rowNo),
      )
    : new Map<number, RowEmail>();
  const summary = safeJson<{ byReason?: Record<string, number> }>(imp.summary, {});
  return {
    import: {
      id: imp.id,
      fileName: imp.fileName,
      status: imp.status,
      pauseKind: imp.pauseKind,
      statusReason: imp.statusReason,
      totalRows: imp.totalRows,
      validRows: imp.validRows,
      invalidRows: imp.invalidRows,
      delimiter: imp.delimiter,
      fileBytes: imp.fileBytes,
      unknownColumns: safeJson<string[]>(imp.unknownColumns, []),
      byReason: Object.entries(summary.byReason ?? {}).map(([code, n]) => ({
        code,
        label: (REASON_LABELS as Record<string, string>)[code] ?? code,
        n,
      })),
      createdAt: imp.createdAt,
      committedAt: imp.committedAt,
      finishedAt: imp.finishedAt,
    },
    sameFile: sameFile ? { id: sameFile.id, createdAt: sameFile.createdAt, status: sameFile.status } : null,
    progress,
    emails,
    rows: rows.rows.map((r) => rowView(r, mails.get(r.rowNo))),
    rowsTotal: rows.total,
    filter,
    page,
    pageSize,
    maxRows: env.IMPORT_MAX_ROWS,
  };
}

export async function importProgressData(id: string) {
  const { db } = await services();
  const imp = await findImport(db, id);
  if (!imp) throw new Response('No such import.', { status: 404 });
  const [progress, emails] = await Promise.all([
    importProgress(db, id),
    imp.status === 'staged' || imp.status === 'discarded' ? Promise.resolve(null) : emailCounts(db, id),
  ]);
  return { status: imp.status, pauseKind: imp.pauseKind, statusReason: imp.statusReason, progress, emails };
}

/**
 * What became of a row's link e-mail, as a code the page words: `none` (no link asked, or the
 * row never got a customer), `waiting` (the row has not reached its link yet), `pending` (queued
 * or retrying), `sent`, `failed`, `cancelled`, or `missing` (a link but no e-mail was queued).
 */
export type RowEmailOutcome = 'none' | 'waiting' | 'pending' | 'sent' | 'failed' | 'cancelled' | 'missing';

function emailOutcome(r: ImportRow, mail: RowEmail | undefined): { outcome: RowEmailOutcome; reason: string | null; at: string | null } {
  if (mail) return { outcome: mail.status === 'queued' ? 'pending' : mail.status, reason: mail.reason, at: mail.at };
  if (!r.sendLink) return { outcome: 'none', reason: null, at: null };
  if (r.status === 'pending' || r.status === 'queued' || r.status === 'linking') return { outcome: 'waiting', reason: null, at: null };
  if (r.status === 'done') return { outcome: 'missing', reason: null, at: null };
  return { outcome: 'none', reason: null, at: null };
}

function rowView(r: ImportRow, mail?: RowEmail) {
  const email = emailOutcome(r, mail);
  return {
    rowNo: r.rowNo,
    line: r.line,
    externalUserId: r.generatedId ? null : r.externalUserId,
    generatedId: r.generatedId ? r.externalUserId : null,
    email: r.email,
    type: r.type,
    alias: r.alias,
    country: r.country,
    sendLink: r.sendLink === 1,
    status: r.status,
    reason: r.reason,
    userId: r.userId,
    linkId: r.linkId,
    emailOutcome: email.outcome,
    emailReason: email.reason,
    emailAt: email.at,
  };
}

function safeJson<T>(s: string, fallback: T): T {
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
}

// ------------------------------------------------------------------ operator actions

const ActionSchema = z.object({ intent: z.enum(['commit', 'discard', 'pause', 'resume', 'cancel', 'retry_failed']) });

export type ActionResult = { ok: true; message: string } | { ok: false; error: string; status: number };

/** One operator action on an import; every attempt is audited with its outcome. */
export async function importAction(request: Request, who: SignedIn & { form: FormData }, id: string): Promise<ActionResult> {
  const { db, env, queues } = await services();
  const parsed = ActionSchema.safeParse({ intent: who.form.get('intent') });
  if (!parsed.success) return { ok: false, status: 400, error: 'Unknown action.' };
  const intent = parsed.data.intent;
  const imp = await findImport(db, id);
  if (!imp) return { ok: false, status: 404, error: 'No such import.' };
  const deps = { db, env, enqueue: queues };
  let ok = false;
  let message = '';
  let detail: Record<string, unknown> = { fileName: imp.fileName, from: imp.status };
  switch (intent) {
    case 'commit':
      ok = await commitImport(db, id, who.operator.id);
      message = ok ? `Import started: ${imp.validRows} rows will be created in Capa.` : 'This import was already committed or cancelled.';
      detail = { ...detail, validRows: imp.validRows };
      break;
    case 'discard':
      ok = await discardImport(db, id);
      message = ok ? 'Dry run cancelled; nothing was created.' : 'Only a dry run can be cancelled this way.';
      break;
    case 'pause':
      ok = await pauseImport(db, id, 'operator', `paused by ${who.operator.name}`);
      message = ok ? 'Import paused. Rows already at Capa finish their step; nothing new starts.' : 'Only a running import can be paused.';
      break;
    case 'resume':
      ok = await resumeImport(db, id);
      message = ok ? 'Import resumed.' : 'Only a paused import can be resumed.';
      break;
    case 'cancel':
      ok = await cancelImport(db, id);
      message = ok ? 'Import cancelled. Rows not yet started will not be created.' : 'Only a running or paused import can be cancelled.';
      break;
    case 'retry_failed': {
      const n = await retryFailedRows(db, id);
      ok = n > 0;
      message = ok
        ? `${n} failed row${n === 1 ? '' : 's'} queued again.`
        : 'There are no failed rows to retry (or the import is paused or cancelled).';
      detail = { ...detail, rows: n };
      break;
    }
  }
  await auditAction(request, who, { action: `import.${intent}`, targetType: 'import', targetId: id, outcome: ok ? 'ok' : 'error', detail });
  if (!ok) return { ok: false, status: 409, error: message };
  // Start or stop at once rather than on the next relay tick. Redis being down is not an error
  // here: rows are stored and the relay queues them when it is back.
  try {
    if (intent === 'commit' || intent === 'resume' || intent === 'retry_failed') await feedImport(deps, id);
    if (intent === 'pause' || intent === 'cancel') await drainImport(deps, id);
  } catch (err) {
    (await services()).logger.warn(
      { importId: id, err: (err as Error).message },
      'import: immediate feed/drain failed; the relay will catch up',
    );
  }
  return { ok: true, message };
}

// ------------------------------------------------------------------ downloads

const EXPORT_COLUMNS = ['row', 'line', ...IMPORT_FIELDS, 'status', 'reason', 'customerId', 'customerUrl'] as const;
// The results also say what became of each row's link e-mail (the errors file stays re-uploadable).
const RESULT_COLUMNS = [...EXPORT_COLUMNS, 'emailStatus', 'emailReason'] as const;

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  // Formula injection: a cell starting with = + - @ is opened as a formula by spreadsheets.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n;]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Streams results (every row) or errors (invalid and failed rows, ready to fix and re-upload) as CSV. */
export async function exportCsv(request: Request, who: SignedIn, id: string, kind: 'results' | 'errors'): Promise<Response> {
  const { db, env } = await services();
  const imp = await findImport(db, id);
  if (!imp) throw new Response('No such import.', { status: 404 });
  await auditAction(request, who, {
    action: `import.download_${kind}`,
    targetType: 'import',
    targetId: id,
    outcome: 'ok',
    detail: { fileName: imp.fileName },
  });
  const base = env.publicUrl;
  let after = 0;
  let headerSent = false;
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(enc.encode(`\uFEFF${(kind === 'results' ? RESULT_COLUMNS : EXPORT_COLUMNS).join(',')}\r\n`));
        return;
      }
      const rows = await rowsForExport(db, id, kind, after, 1000);
      if (rows.length === 0) {
        controller.close();
        return;
      }
      after = rows[rows.length - 1]!.rowNo;
      const mails =
        kind === 'results'
          ? await rowEmails(
              db,
              id,
              rows.filter((r) => r.linkId).map((r) => r.rowNo),
            )
          : null;
      const text = rows
        .map((r) =>
          [
            r.rowNo,
            r.line,
            r.generatedId && kind === 'errors' ? '' : r.externalUserId,
            r.email,
            r.type,
            r.alias,
            r.country,
            r.sendLink ? 'yes' : 'no',
            r.status,
            r.reason,
            r.userId,
            r.userId ? `${base}/users/${r.userId}` : '',
            ...(mails ? emailCells(r, mails.get(r.rowNo)) : []),
          ]
            .map(csvCell)
            .join(','),
        )
        .join('\r\n');
      controller.enqueue(enc.encode(`${text}\r\n`));
    },
  });
  const name = `${
    imp.fileName
      .replace(/\.csv$/i, '')
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .slice(0, 80) || 'import'
  }-${kind}.csv`;
  return new Response(stream, {
    headers: {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${name}"`,
      'cache-control': 'no-store',
    },
  });
}

function emailCells(r: ImportRow, mail: RowEmail | undefined): [string, string] {
  const e = emailOutcome(r, mail);
  return [e.outcome === 'none' ? '' : e.outcome, e.reason ?? ''];
}

export function templateResponse(): Response {
  return new Response(`\uFEFF${TEMPLATE_CSV}`, {
    headers: {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': 'attachment; filename="kyc-desk-import-template.csv"',
      'cache-control': 'no-store',
    },
  });
}
