import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { storeMessage, storedMessage, type StoredMessage, type StoredValues } from '../../lib/stored-message.js';

/**
 * Streaming reader for onboarding CSV files. Decodes UTF-8 strictly (with or without BOM),
 * detects `,` or `;` from the header line, maps header names case-insensitively and yields data
 * rows in batches. Anything that makes the file as a whole unreadable throws ImportFileError with
 * a message for the operator (a catalogue key, `imports:file_errors.*`, and its values); nothing
 * is half-read into the database by the caller because staging runs inside one transaction.
 */

export const IMPORT_FIELDS = ['externalUserId', 'email', 'type', 'alias', 'country', 'sendLink'] as const;
export type ImportField = (typeof IMPORT_FIELDS)[number];

export type ImportFileErrorCode =
  'empty' | 'header_only' | 'too_large' | 'too_many_rows' | 'binary' | 'encoding' | 'quoting' | 'ragged' | 'header';

export class ImportFileError extends Error {
  /** What the operator reads: `imports:file_errors.<key>` with its values. */
  readonly detail: StoredMessage;
  constructor(
    readonly code: ImportFileErrorCode,
    key: string,
    values?: StoredValues,
    readonly line?: number,
  ) {
    const detail = storedMessage(`imports:file_errors.${key}`, values);
    super(storeMessage(detail));
    this.detail = detail;
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

/** Other names a file's header may give our fields, keyed by headerKey (see headerField). */
export type HeaderAliases = Readonly<Record<string, ImportField>>;

/** The template's example rows (the console words its header and yes/no in the reader's language). */
export const TEMPLATE_ROWS: ReadonlyArray<Readonly<Record<ImportField, string>>> = [
  { externalUserId: 'cust-0001', email: 'ana.lopez@example.mx', type: 'INDIVIDUAL', alias: 'Ana López', country: 'MX', sendLink: 'yes' },
  { externalUserId: '', email: 'pedro.diaz@example.do', type: 'INDIVIDUAL', alias: '', country: 'DO', sendLink: 'yes' },
  {
    externalUserId: 'cust-0003',
    email: 'compras@empresa.example.mx',
    type: 'BUSINESS',
    alias: 'Empresa SA',
    country: 'MX',
    sendLink: 'no',
  },
];

/** The template with the field names as header (none of its values needs quoting). */
export const TEMPLATE_CSV = [IMPORT_FIELDS.join(','), ...TEMPLATE_ROWS.map((r) => IMPORT_FIELDS.map((f) => r[f]).join(','))]
  .map((line) => `${line}\r\n`)
  .join('');

/** The file is over the size limit (in MB, or KB for limits under 1 MB). */
export function tooLargeError(maxBytes: number): ImportFileError {
  return maxBytes >= 1024 * 1024
    ? new ImportFileError('too_large', 'too_large', { mb: Math.floor(maxBytes / 1024 / 1024) })
    : new ImportFileError('too_large', 'too_large_kb', { kb: Math.floor(maxBytes / 1024) });
}

/** How header names are compared: case, accents, spaces, `_` and `-` do not matter. */
export function headerKey(name: string): string {
  return name
    .trim()
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[\s_-]+/g, '');
}

const HEADER_ALIASES: Record<string, ImportField> = Object.fromEntries(IMPORT_FIELDS.map((f) => [headerKey(f), f]));

/**
 * "External User Id", "external_user_id", "EXTERNALUSERID" → externalUserId. `aliases` adds other
 * names for the fields (the column names of our own downloads in other languages), keyed by headerKey.
 */
export function headerField(name: string, aliases: Readonly<Record<string, ImportField>> = {}): ImportField | null {
  const key = headerKey(name);
  return HEADER_ALIASES[key] ?? aliases[key] ?? null;
}

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
      throw tooLargeError(limits.maxBytes);
    }
    if (first) {
      first = false;
      if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) {
        throw new ImportFileError('encoding', 'utf16');
      }
      if (chunk[0] === 0x50 && chunk[1] === 0x4b && chunk[2] === 0x03 && chunk[3] === 0x04) {
        throw new ImportFileError('binary', 'zip');
      }
      if (chunk[0] === 0xd0 && chunk[1] === 0xcf && chunk[2] === 0x11 && chunk[3] === 0xe0) {
        throw new ImportFileError('binary', 'xls');
      }
    }
    if (chunk.includes(0)) {
      throw new ImportFileError('binary', 'nul_byte', { line: seen.lines + 1 }, seen.lines + 1);
    }
    let text: string;
    try {
      text = decoder.decode(chunk, { stream: true });
    } catch {
      // Locate the bad byte for the message: the lenient decoder marks it with U+FFFD.
      const lenient = new TextDecoder('utf-8').decode(chunk);
      const at = lenient.indexOf('\uFFFD');
      const line = seen.lines + 1 + countNewlines(at >= 0 ? lenient.slice(0, at) : '');
      throw new ImportFileError('encoding', 'not_utf8', { line }, line);
    }
    seen.lines += countNewlines(text);
    if (text) yield text;
  }
  let tail: string;
  try {
    tail = decoder.decode();
  } catch {
    throw new ImportFileError('encoding', 'not_utf8_end', undefined, seen.lines + 1);
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
  // The same words with "Line N:" in front when csv-parse says where.
  const at = (key: string, values: StoredValues = {}) => [line ? `${key}_at` : key, line ? { ...values, line } : values] as const;
  switch (err.code) {
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
    case 'CSV_RECORD_INCONSISTENT_COLUMNS': {
      const rec = (err as { record?: unknown[] }).record;
      const got = Array.isArray(rec) ? rec.length : '?';
      return new ImportFileError('ragged', ...at('ragged', { got, expected: headerWidth ?? '?', delimiter }), line);
    }
    case 'CSV_QUOTE_NOT_CLOSED':
      return new ImportFileError('quoting', ...at('quote_unclosed'), line);
    case 'INVALID_OPENING_QUOTE':
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return new ImportFileError('quoting', ...at('quote_misplaced'), line);
    case 'CSV_MAX_RECORD_SIZE':
      return new ImportFileError('quoting', ...at('row_too_long'), line);
    default:
      return new ImportFileError('quoting', ...at('not_csv', { detail: err.message }), line);
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
    private readonly aliases: HeaderAliases = {},
  ) {}

  async *batches(size = 1000): AsyncGenerator<RawRow[]> {
    const { firstLine, replay } = await peekFirstLine(decode(this.source, this.limits, this.seen));
    if (firstLine.replace(/^\uFEFF/, '').trim() === '' && this.seen.bytes === 0) {
      throw new ImportFileError('empty', 'empty');
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
          throw new ImportFileError('too_many_rows', 'too_many_rows', { max: this.limits.maxRows });
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
    if (!this.header) throw new ImportFileError('empty', 'empty');
    if (this.rows === 0) throw new ImportFileError('header_only', 'header_only');
  }

  private readHeader(fields: string[], delimiter: ',' | ';'): ImportHeader {
    const columns: Array<ImportField | null> = [];
    const unknown: string[] = [];
    const seenFields = new Map<ImportField, number>();
    fields.forEach((name, i) => {
      const f = headerField(name, this.aliases);
      if (f && seenFields.has(f)) {
        throw new ImportFileError('header', 'header_twice', { column: f, first: seenFields.get(f)! + 1, second: i + 1 }, 1);
      }
      if (f) seenFields.set(f, i);
      // A blank header cell is listed by its position, "(3)", which the page words in its language.
      else unknown.push(name.trim() === '' ? `(${i + 1})` : name.trim());
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
        found ? 'no_email_column' : 'no_email_column_empty',
        { found, expected: IMPORT_FIELDS.join(', ') },
        1,
      );
    }
    return { delimiter, columns, unknown };
  }
}
