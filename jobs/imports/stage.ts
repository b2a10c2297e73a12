import { createHash } from 'node:crypto';
import type { Db } from '../../db/client.js';
import { createImport, existingUsers, finishStaging, findSameFile, insertImportRows } from '../../db/repositories/imports.js';
import type { Import, NewImportRow } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';
import { ImportCsvReader, type HeaderAliases, type ReadLimits } from './parser.js';
import { DuplicateTracker, checkRow, markExisting, type ReasonCode } from './validator.js';

export interface StageInput {
  source: AsyncIterable<Uint8Array>;
  fileName: string;
  createdBy: string | null;
  limits: ReadLimits;
  /** Header names in other languages (our own downloads' columns), besides the field names. */
  headerAliases?: HeaderAliases;
}

export interface StageResult {
  importId: string;
  totalRows: number;
  validRows: number;
  invalidRows: number;
  unknownColumns: string[];
  byReason: Partial<Record<ReasonCode, number>>;
  /** An earlier import of the same bytes (the dry run says so). */
  sameFileAs: Import | null;
}

const BATCH = 1000;

/**
 * Dry run: parse, validate and store every row in one transaction. A file that cannot be read
 * (ImportFileError) rolls everything back, so a malformed file creates nothing. Nothing here
 * reaches Capa; rows are stored `pending` (valid) or `invalid` with their reason.
 */
export async function stageImport(db: Db, input: StageInput): Promise<StageResult> {
  const hash = createHash('sha256');
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of input.source) {
      hash.update(chunk);
      yield chunk;
    }
  }
  const reader = new ImportCsvReader(hashed(), input.limits, input.headerAliases);
  const fileName = input.fileName.replace(/[\r\n\t]/g, ' ').slice(0, 200) || 'upload.csv';

  const result = await db.transaction().execute(async (trx) => {
    const importId = await createImport(trx, { fileName, fileSha256: '', fileBytes: 0, delimiter: ',', createdBy: input.createdBy });
    const dups = new DuplicateTracker();
    const byReason: Partial<Record<ReasonCode, number>> = {};
    let valid = 0;
    let invalid = 0;
    for await (const raws of reader.batches(BATCH)) {
      const checked = raws.map((r) => checkRow(r, dups));
      const ids = checked.filter((c) => c.ok && !c.generatedId && c.externalUserId).map((c) => c.externalUserId!);
      const emails = checked.filter((c) => c.ok && c.email).map((c) => c.email!);
      if (ids.length || emails.length) markExisting(checked, await existingUsers(trx, ids, emails));
      const now = nowIso();
      const rows: NewImportRow[] = checked.map((c) => {
        if (c.ok) valid++;
        else {
          invalid++;
          byReason[c.reasonCode!] = (byReason[c.reasonCode!] ?? 0) + 1;
        }
        return {
          importId,
          rowNo: c.rowNo,
          line: c.line,
          externalUserId: c.externalUserId,
          generatedId: c.generatedId ? 1 : 0,
          email: c.email,
          type: c.type,
          alias: c.alias,
          country: c.country,
          sendLink: c.sendLink ? 1 : 0,
          status: c.ok ? 'pending' : 'invalid',
          reasonCode: c.reasonCode,
          reason: c.reason,
          userId: null,
          capaUserId: null,
          linkId: null,
          enqueuedAt: null,
          finishedAt: null,
          updatedAt: now,
        };
      });
      await insertImportRows(trx, rows);
    }
    const sha = hash.digest('hex');
    const unknownColumns = reader.header?.unknown ?? [];
    await finishStaging(trx, importId, {
      fileSha256: sha,
      fileBytes: reader.seen.bytes,
      delimiter: reader.header?.delimiter ?? ',',
      totalRows: valid + invalid,
      validRows: valid,
      invalidRows: invalid,
      unknownColumns,
      byReason,
    });
    return { importId, totalRows: valid + invalid, validRows: valid, invalidRows: invalid, unknownColumns, byReason, sha };
  });
  const sameFileAs = (await findSameFile(db, result.sha, result.importId)) ?? null;
  const { sha: _sha, ...rest } = result;
  return { ...rest, sameFileAs };
}
