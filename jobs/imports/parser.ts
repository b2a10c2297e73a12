import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';

/**
 * Streaming reader for onboarding CSV files. Decodes UTF-8 strictly (with or without BOM),
 * detects `,` or `;` from the header line, maps header names case-insensitively and yields data
 * rows in batches. Anything that makes the file as a whole unreadable throws ImportFileError with
 * a message meant for the operator; nothing is half-read into the database by the caller because
 * staging runs inside one transaction.
 */

export const IMPORT_FIELDS = ['externalUserId', 'email', 'type', 'alias', 'country', 'sendLink'] as const;
export type ImportField = (typeof IMPORT_FIELDS)[number];

export type ImportFileErrorCode =
  'empty' | 'header_only' | 'too_large' | 'too_many_rows' | 'binary' | 'encoding' | 'quoting' | 'ragged' | 'header';

export class ImportFileError extends Error {
  constructor(
    readonly code: ImportFileErrorCode,
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'ImportFileError';
  }
}

export interface ImportHeader {
  delimiter: ',' | ';';
  /** For each column of the file, the field it feeds (null = ignored). */
  columns: Array<ImportField | null>;
  /** Header names that are not ours, as written in the file. */
  unknown: string[];
}

export interface RawRow {
  /** 1-based data row number. */
  rowNo: number;
  /** Line of the file where the row starts. */
  line: number;
  values: Record<ImportField, string>;
}

export interface ReadLimits {
  maxBytes: number;
  maxRows: number;
}

export const TEMPLATE_CSV =
  'externalUserId,email,type,alias,country,sendLink\r\n' +
  'cust-0001,ana.lopez@example.mx,INDIVIDUAL,Ana López,MX,yes\r\n' +
  ',pedro.diaz@example.do,INDIVIDUAL,,DO,yes\r\n' +
  'cust-0003,compras@empresa.example.mx,BUSINESS,Empresa SA,MX,no\r\n';

const HEADER_ALIASES: Record<string, ImportField> = Object.fromEntries(IMPORT_FIELDS.map((f) => [f.toLowerCase(), f]));

/** "External User Id", "external_user_id", "EXTERNALUSERID" → externalUserId. */
export function headerField(name: string): ImportField | null {
  const key = name
    .trim()
    .toLowerCase()
    .replace(/[\s_-]+/g, '');
  return HEADER_ALIASES[key] ?? null;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** Bytes → strict UTF-8 text, with the checks that need raw bytes (size, binary, UTF-16). */
async function* decode(
  source: AsyncIterable<Uint8Array>,
  limits: ReadLimits,
  seen: { bytes: number; lines: number },
): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let first = true;
  for await (const raw of source) {
    const chunk = raw instanceof Buffer ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (chunk.length === 0) continue;
    seen.bytes += chunk.length;
    if (seen.bytes > limits.maxBytes) {
      throw new ImportFileError(
        'too_large',
        `The file is larger than ${fmt(Math.floor(limits.maxBytes / 1024 / 1024))} MB. Split it into smaller files and import them one by one.`,
      );
    }
    if (first) {
      first = false;
      if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) {
        throw new ImportFileError(
          'encoding',
          'The file is saved as UTF-16. Save it as "CSV UTF-8" (in Excel: Save As → CSV UTF-8) and upload it again.',
        );
      }
      if (chunk[0] === 0x50 && chunk[1] === 0x4b && chunk[2] === 0x03 && chunk[3] === 0x04) {
        throw new ImportFileError(
          'binary',
          'This is an Excel workbook or another zip file, not a CSV. Save it as "CSV UTF-8" and upload that.',
        );
      }
      if (chunk[0] === 0xd0 && chunk[1] === 0xcf && chunk[2] === 0x11 && chunk[3] === 0xe0) {
        throw new ImportFileError('binary', 'This is an old Excel (.xls) file, not a CSV. Save it as "CSV UTF-8" and upload that.');
      }
    }
    if (chunk.includes(0)) {
      throw new ImportFileError(
        'binary',
        `The file contains binary data (a NUL byte near line ${fmt(seen.lines + 1)}); it is not a text CSV. Save it as "CSV UTF-8" and upload that.`,
        seen.lines + 1,
      );
    }
    let text: string;
    try {
      text = decoder.decode(chunk, { stream: true });
    } catch {
      // Locate the bad byte for the message: the lenient decoder marks it with U+FFFD.
      const lenient = new TextDecoder('utf-8').decode(chunk);
      const at = lenient.indexOf('\uFFFD');
      const line = seen.lines + 1 + countNewlines(at >= 0 ? lenient.slice(0, at) : '');
      throw new ImportFileError(
        'encoding',
        `The file is not valid UTF-8 (near line ${fmt(line)}). It was probably saved as Latin-1/Windows-1252: save it as "CSV UTF-8" and upload it again.`,
        line,
      );
    }
    seen.lines += countNewlines(text);
    if (text) yield text;
  }
  let tail: string;
  try {
    tail = decoder.decode();
  } catch {
    throw new ImportFileError(
      'encoding',
      'The file is not valid UTF-8 (it ends in the middle of a character). Save it as "CSV UTF-8" and upload it again.',
      seen.lines + 1,
    );
  }
  if (tail) yield tail;
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** Fields in the header line (separators outside quotes + 1). */
function countFields(line: string, delimiter: string): number {
  let n = 1;
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === delimiter) n++;
  }
  return n;
}

/** Counts separators in the header line, outside quotes; `;` wins only when it is the more frequent. */
export function detectDelimiter(headerLine: string): ',' | ';' {
  let commas = 0;
  let semis = 0;
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === ',') commas++;
    else if (!quoted && ch === ';') semis++;
  }
  return semis > commas ? ';' : ',';
}

/** Holds text back until the first line is complete, to pick the separator before parsing. */
async function peekFirstLine(texts: AsyncGenerator<string>): Promise<{ firstLine: string; replay: AsyncGenerator<string> }> {
  let buffered = '';
  let done = false;
  while (!done && !/[\r\n]/.test(buffered) && buffered.length < 64 * 1024) {
    const n = await texts.next();
    if (n.done) done = true;
    else buffered += n.value;
  }
  const firstLine = buffered.split(/\r\n|\n|\r/, 1)[0] ?? '';
  async function* replay(): AsyncGenerator<string> {
    if (buffered) yield buffered;
    if (!done) yield* texts;
  }
  return { firstLine, replay: replay() };
}

function describeCsvError(err: CsvError, delimiter: string, headerWidth: number | null): ImportFileError {
  const lines = (err as unknown as { lines?: unknown }).lines;
  const line = typeof lines === 'number' ? lines : undefined;
  const at = line ? `Line ${fmt(line)}: ` : '';
  switch (err.code) {
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
    case 'CSV_RECORD_INCONSISTENT_COLUMNS': {
      const rec = (err as { record?: unknown[] }).record;
      const got = Array.isArray(rec) ? rec.length : '?';
      return new ImportFileError(
        'ragged',
        `${at}this row has ${got} fields but the header has ${headerWidth ?? '?'}. A separator ("${delimiter}") is missing or extra, or a value containing "${delimiter}" is not in double quotes.`,
        line,
      );
    }
    case 'CSV_QUOTE_NOT_CLOSED':
      return new ImportFileError(
        'quoting',
        `A double quote (") is opened and never closed${line ? ` (the file ends at line ${fmt(line)})` : ''}. Check the rows around the last quote you typed.`,
        line,
      );
    case 'INVALID_OPENING_QUOTE':
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return new ImportFileError(
        'quoting',
        `${at}a double quote (") is misplaced: a value with quotes must be fully enclosed in quotes, and quotes inside it doubled ("").`,
        line,
      );
    case 'CSV_MAX_RECORD_SIZE':
      return new ImportFileError(
        'quoting',
        `${at}one row is longer than 64 KB — usually a double quote (") that is never closed swallows the rows after it.`,
        line,
      );
    default:
      return new ImportFileError('quoting', `${at}the file is not valid CSV (${err.message}).`, line);
  }
}

/**
 * Reads the file and yields data rows in batches. The header is available on `reader.header`
 * once the first batch (or the end) arrives.
 */
export class ImportCsvReader {
  header: ImportHeader | null = null;
  rows = 0;
  readonly seen = { bytes: 0, lines: 0 };

  constructor(
    private readonly source: AsyncIterable<Uint8Array>,
    private readonly limits: ReadLimits,
  ) {}

  async *batches(size = 1000): AsyncGenerator<RawRow[]> {
    const { firstLine, replay } = await peekFirstLine(decode(this.source, this.limits, this.seen));
    if (firstLine.replace(/^\uFEFF/, '').trim() === '' && this.seen.bytes === 0) {
      throw new ImportFileError('empty', 'The file is empty. Download the template, fill it in and upload it again.');
    }
    const delimiter = detectDelimiter(firstLine);
    const parser = parse({
      delimiter,
      bom: true,
      relax_column_count: false,
      skip_empty_lines: true,
      max_record_size: 64 * 1024,
      info: true,
    });
    const src = Readable.from(replay, { objectMode: true });
    src.on('error', (e) => parser.destroy(e));
    src.pipe(parser);

    let batch: RawRow[] = [];
    // From the raw first line: csv-parse may fail on a later row before the header record is read here.
    let width: number | null = countFields(firstLine, delimiter);
    try {
      for await (const rec of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
        const fields = rec.record;
        if (!this.header) {
          if (fields.every((f) => f.trim() === '')) continue;
          width = fields.length;
          this.header = this.readHeader(fields, delimiter);
          continue;
        }
        // Spreadsheets export fully blank rows as ";;;;;" — treat them like empty lines.
        if (fields.every((f) => f.trim() === '')) continue;
        this.rows++;
        if (this.rows > this.limits.maxRows) {
          throw new ImportFileError(
            'too_many_rows',
            `The file has more than ${fmt(this.limits.maxRows)} data rows. Split it into files of at most ${fmt(this.limits.maxRows)} rows and import them one by one.`,
          );
        }
        const values = { externalUserId: '', email: '', type: '', alias: '', country: '', sendLink: '' } as Record<ImportField, string>;
        const cols = this.header.columns;
        for (let i = 0; i < cols.length; i++) {
          const f = cols[i];
          if (f) values[f] = fields[i] ?? '';
        }
        batch.push({ rowNo: this.rows, line: rec.info.lines, values });
        if (batch.length >= size) {
          yield batch;
          batch = [];
        }
      }
    } catch (err) {
      if (err instanceof ImportFileError) throw err;
      if (err instanceof CsvError) throw describeCsvError(err, delimiter, width);
      throw err;
    } finally {
      src.destroy();
    }
    if (batch.length) yield batch;
    if (!this.header) {
      throw new ImportFileError('empty', 'The file is empty. Download the template, fill it in and upload it again.');
    }
    if (this.rows === 0) {
      throw new ImportFileError('header_only', 'The file has a header row but no data rows. Add one row per customer below the header.');
    }
  }

  private readHeader(fields: string[], delimiter: ',' | ';'): ImportHeader {
    const columns: Array<ImportField | null> = [];
    const unknown: string[] = [];
    const seenFields = new Map<ImportField, number>();
    fields.forEach((name, i) => {
      const f = headerField(name);
      if (f && seenFields.has(f)) {
        throw new ImportFileError(
          'header',
          `The header names the column "${f}" twice (columns ${seenFields.get(f)! + 1} and ${i + 1}). Keep one of them.`,
          1,
        );
      }
      if (f) seenFields.set(f, i);
      else unknown.push(name.trim() === '' ? `(blank, column ${i + 1})` : name.trim());
      columns.push(f);
    });
    if (!seenFields.has('email')) {
      const found = fields
        .map((f) => f.trim())
        .filter(Boolean)
        .slice(0, 8)
        .join(', ');
      throw new ImportFileError(
        'header',
        `The first line must be a header with at least an "email" column (found: ${found || 'nothing'}). Expected columns: ${IMPORT_FIELDS.join(', ')}. Download the template to start from.`,
        1,
      );
    }
    return { delimiter, columns, unknown };
  }
}
