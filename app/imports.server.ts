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
import { headerKey, IMPORT_FIELDS, ImportFileError, tooLargeError, TEMPLATE_ROWS, type ImportField } from '../jobs/imports/parser.js';
import { stageImport } from '../jobs/imports/stage.js';
import { csvField } from '../lib/csv.js';
import { readMessages, storeMessage, storedMessage } from '../lib/stored-message.js';
import type { TFunction } from '../lib/i18n';
import type { Message } from './action-result';
import { auditAction, type SignedIn } from './auth.server';
import { LANGUAGES } from './i18n';
import { getFixedT, i18nFor } from './i18n.server';
import { jobFailureMessage } from './job-failures.server';
import { reasonParts } from './notifications.server';
import { pageNumber, parsePaging } from './list-params.server';
import { services } from './services.server';

/**
 * Facade for the /imports routes: db/ and jobs/ are reached only from here. What the operator
 * reads comes back as messages (`imports:*` catalogue keys and values); only the downloads, made
 * for one reader, are worded here, in that reader's language.
 */

export type UploadResult = { ok: true; importId: string } | { ok: false; error: Message; status: number };

/**
 * The file's header may name our fields in any language the console speaks: the column names of
 * our own downloads (`imports:csv.columns.*`), so an errors file saved in Spanish uploads again.
 */
function headerAliases(): Record<string, ImportField> {
  const out: Record<string, ImportField> = {};
  for (const lng of LANGUAGES) {
    const t = getFixedT(lng, 'imports');
    for (const f of IMPORT_FIELDS) out[headerKey(t(`csv.columns.${f}`))] = f;
  }
  return out;
}

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
    return { ok: false, status: 400, error: { code: 'imports:upload.no_file' } };
  }
  if (file.size > env.IMPORT_MAX_BYTES) return { ok: false, status: 413, error: tooLargeError(env.IMPORT_MAX_BYTES).detail };
  try {
    const r = await stageImport(db, {
      source: file.stream() as unknown as AsyncIterable<Uint8Array>,
      fileName: file.name || 'upload.csv',
      createdBy: who.operator.id,
      limits: { maxBytes: env.IMPORT_MAX_BYTES, maxRows: env.IMPORT_MAX_ROWS },
      headerAliases: headerAliases(),
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
      return { ok: false, status: 422, error: err.detail };
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
  if (!imp) throw new Response('imports:page.not_found', { status: 404 });
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
      statusReason: statusReasonMessage(imp.statusReason),
      totalRows: imp.totalRows,
      validRows: imp.validRows,
      invalidRows: imp.invalidRows,
      delimiter: imp.delimiter,
      fileBytes: imp.fileBytes,
      unknownColumns: safeJson<string[]>(imp.unknownColumns, []),
      // Worded by the page: `imports:reason_labels.<code>`.
      byReason: Object.entries(summary.byReason ?? {}).map(([code, n]) => ({ code, n })),
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
  if (!imp) throw new Response('imports:page.not_found', { status: 404 });
  const [progress, emails] = await Promise.all([
    importProgress(db, id),
    imp.status === 'staged' || imp.status === 'discarded' ? Promise.resolve(null) : emailCounts(db, id),
  ]);
  return { status: imp.status, pauseKind: imp.pauseKind, statusReason: statusReasonMessage(imp.statusReason), progress, emails };
}

/**
 * What became of a row's link e-mail, as a code the page words: `none` (no link asked, or the
 * row never got a customer), `waiting` (the row has not reached its link yet), `pending` (queued
 * or retrying), `sent`, `failed`, `cancelled`, or `missing` (a link but no e-mail was queued).
 */
export type RowEmailOutcome = 'none' | 'waiting' | 'pending' | 'sent' | 'failed' | 'cancelled' | 'missing';

/**
 * An import's status reason as a message. Older imports stored English text: shown as it is
 * (`imports:status_reasons.text`).
 */
function statusReasonMessage(stored: string | null): Message | null {
  if (!stored) return null;
  return readMessages(stored)?.[0] ?? { code: 'imports:status_reasons.text', values: { text: stored } };
}

/**
 * A row's reasons as messages: the problems the dry run found, or why it failed or was cancelled.
 * A Capa refusal is stored in the job's words (describeCapaError's English), read back as its code.
 */
export function rowReasonMessages(stored: string | null): Message[] {
  if (!stored) return [];
  return readMessages(stored) ?? [jobFailureMessage(stored)];
}

/**
 * A link e-mail's failure reason as the ledger stored it, as messages: the notifications
 * feature reads its own words back as codes (reasonParts; the SMTP server's answer stays as it is).
 */
function emailReasonMessages(stored: string | null): Message[] {
  if (!stored) return [];
  return readMessages(stored) ?? reasonParts(stored);
}

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
    reasons: rowReasonMessages(r.reason),
    userId: r.userId,
    linkId: r.linkId,
    emailOutcome: email.outcome,
    emailReasons: emailReasonMessages(email.reason),
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

export type ActionResult = { ok: true; message: Message } | { ok: false; error: Message; status: number };

/** One operator action on an import; every attempt is audited with its outcome. */
export async function importAction(request: Request, who: SignedIn & { form: FormData }, id: string): Promise<ActionResult> {
  const { db, env, queues } = await services();
  const parsed = ActionSchema.safeParse({ intent: who.form.get('intent') });
  if (!parsed.success) return { ok: false, status: 400, error: { code: 'imports:actions.unknown' } };
  const intent = parsed.data.intent;
  const imp = await findImport(db, id);
  if (!imp) return { ok: false, status: 404, error: { code: 'imports:page.not_found' } };
  const deps = { db, env, enqueue: queues };
  let ok = false;
  // `imports:actions.<key>` when it worked, `<key>_refused` when the import was not in a state for it.
  const key: string = intent;
  let values: Message['values'];
  let detail: Record<string, unknown> = { fileName: imp.fileName, from: imp.status };
  switch (intent) {
    case 'commit':
      ok = await commitImport(db, id, who.operator.id);
      values = { count: imp.validRows };
      detail = { ...detail, validRows: imp.validRows };
      break;
    case 'discard':
      ok = await discardImport(db, id);
      break;
    case 'pause':
      ok = await pauseImport(
        db,
        id,
        'operator',
        storeMessage(storedMessage('imports:status_reasons.paused_by', { name: who.operator.name })),
      );
      break;
    case 'resume':
      ok = await resumeImport(db, id);
      break;
    case 'cancel':
      ok = await cancelImport(db, id);
      break;
    case 'retry_failed': {
      const n = await retryFailedRows(db, id);
      ok = n > 0;
      values = { count: n };
      detail = { ...detail, rows: n };
      break;
    }
  }
  const message: Message = { code: `imports:actions.${ok ? key : `${key}_refused`}`, ...(ok && values ? { values } : {}) };
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

/** A message in the reader's words (a download is made for one reader). */
const word = (t: TFunction, m: Message): string => t(m.code, m.values);

/**
 * Streams results (every row) or errors (invalid and failed rows, ready to fix and re-upload) as
 * CSV, worded in the reader's language: column names, statuses, reasons, yes/no. The field
 * columns keep names the upload reads back in any of our languages (see headerAliases).
 */
export async function exportCsv(request: Request, who: SignedIn, id: string, kind: 'results' | 'errors'): Promise<Response> {
  const { db, env } = await services();
  const imp = await findImport(db, id);
  const { t } = await i18nFor(request, 'imports');
  // A download has no page around it: the refusal is worded here, for the reader.
  if (!imp) throw new Response(t('page.not_found'), { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  await auditAction(request, who, {
    action: `import.download_${kind}`,
    targetType: 'import',
    targetId: id,
    outcome: 'ok',
    detail: { fileName: imp.fileName },
  });
  const base = env.publicUrl;
  const yes = t('csv.yes');
  const no = t('csv.no');
  let after = 0;
  let headerSent = false;
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        const columns = (kind === 'results' ? RESULT_COLUMNS : EXPORT_COLUMNS).map((c) => csvField(t(`csv.columns.${c}`)));
        controller.enqueue(enc.encode(`\uFEFF${columns.join(',')}\r\n`));
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
            r.sendLink ? yes : no,
            t(`row_statuses.${r.status}`),
            rowReasonMessages(r.reason)
              .map((m) => word(t, m))
              .join('; '),
            r.userId,
            r.userId ? `${base}/users/${r.userId}` : '',
            ...(mails ? emailCells(t, r, mails.get(r.rowNo)) : []),
          ]
            .map(csvField)
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

function emailCells(t: TFunction, r: ImportRow, mail: RowEmail | undefined): [string, string] {
  const e = emailOutcome(r, mail);
  const reasons = emailReasonMessages(e.reason).map((m) => word(t, m));
  return [e.outcome === 'none' ? '' : t(`email.outcomes.${e.outcome}`), reasons.join(': ')];
}

/** The template, in the reader's language: our column names and yes/no in their words, the same example rows. */
export async function templateResponse(request: Request): Promise<Response> {
  const { t } = await i18nFor(request, 'imports');
  const yesNo = (v: string) => (v === 'yes' ? t('csv.yes') : v === 'no' ? t('csv.no') : v);
  const lines = [
    IMPORT_FIELDS.map((f) => csvField(t(`csv.columns.${f}`))).join(','),
    ...TEMPLATE_ROWS.map((row) => IMPORT_FIELDS.map((f) => csvField(f === 'sendLink' ? yesNo(row[f]) : row[f])).join(',')),
  ];
  return new Response(`\uFEFF${lines.join('\r\n')}\r\n`, {
    headers: {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': 'attachment; filename="kyc-desk-import-template.csv"',
      'cache-control': 'no-store',
    },
  });
}

/** The upload limits the new-import page states (IMPORT_MAX_BYTES, IMPORT_MAX_ROWS). */
export async function importLimits(): Promise<{ maxBytes: number; maxRows: number }> {
  const { env } = await services();
  return { maxBytes: env.IMPORT_MAX_BYTES, maxRows: env.IMPORT_MAX_ROWS };
}
