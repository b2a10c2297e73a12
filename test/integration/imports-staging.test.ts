import { createReadStream } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFixedT } from '../../app/i18n';
import { insertUser } from '../../db/repositories/users.js';
import { readMessages } from '../../lib/stored-message.js';
import { ImportFileError, TEMPLATE_CSV } from '../../jobs/imports/parser.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { createTestDb, type TestDb } from '../support/runtime.js';

const FIX = path.resolve('test/fixtures/imports');
const en = getFixedT('en', 'imports');
const es = getFixedT('es', 'imports');
/** A stored reason (codes and values) as an English or Spanish reader sees it. */
const worded = (stored: string | null, t = en) => (readMessages(stored) ?? []).map((m) => t(m.code, m.values ?? {})).join('; ');
const limits = { maxBytes: 20 * 1024 * 1024, maxRows: 100_000 };

async function* bytes(b: Buffer | string, chunk = 7): AsyncGenerator<Uint8Array> {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  // Small chunks: multi-byte characters and the header line are split across reads.
  for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
}

describe('import staging (dry run): parse + validate + store', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
    await insertUser(t.db, { externalUserId: 'existing-0001', email: 'existing@example.mx', type: 'INDIVIDUAL' });
    await insertUser(t.db, { externalUserId: 'other-0009', email: 'Already@example.mx', type: 'INDIVIDUAL' });
  });
  afterAll(async () => {
    await t?.close();
  });

  const stageFile = (name: string, l = limits) =>
    stageImport(t.db, { source: createReadStream(path.join(FIX, name)), fileName: name, createdBy: null, limits: l });
  const importCount = async () =>
    Number(
      (
        await t.db
          .selectFrom('imports')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const rowCount = async () =>
    Number(
      (
        await t.db
          .selectFrom('importRows')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('a file with every kind of bad row: each row gets its reason, unknown columns are reported', async () => {
    const r = await stageFile('every-bad-row.csv');
    expect(r).toMatchObject({ totalRows: 16, validRows: 4, invalidRows: 12, unknownColumns: ['Notes'] });
    const rows = await t.db.selectFrom('importRows').selectAll().where('importId', '=', r.importId).orderBy('rowNo').execute();
    const byNo = (n: number) => rows.find((x) => x.rowNo === n)!;
    expect(rows.map((x) => [x.rowNo, x.status, x.reasonCode])).toEqual([
      [1, 'pending', null],
      [2, 'pending', null],
      [3, 'pending', null],
      [4, 'invalid', 'bad_email'],
      [5, 'invalid', 'missing_email'],
      [6, 'invalid', 'unknown_type'],
      [7, 'invalid', 'unsupported_country'],
      [8, 'invalid', 'missing_country'],
      [9, 'invalid', 'bad_send_link'],
      [10, 'invalid', 'kyb_link'],
      [11, 'invalid', 'duplicate_in_file'],
      [12, 'invalid', 'duplicate_in_file'],
      [13, 'invalid', 'exists'],
      [14, 'invalid', 'exists'],
      [15, 'invalid', 'bad_external_id'],
      [16, 'pending', null],
    ]);
    expect(byNo(2)).toMatchObject({ type: 'INDIVIDUAL', country: 'DO', sendLink: 0, line: 3 });
    expect(byNo(3)).toMatchObject({ generatedId: 1, type: 'INDIVIDUAL', sendLink: 1 });
    expect(byNo(3).externalUserId).toMatch(/^kyc-[0-9a-f]{12}$/);
    // Stored as codes and values, worded for whoever reads them.
    expect(readMessages(byNo(4).reason)).toEqual([
      { code: 'imports:row_reasons.bad_email', values: { value: 'not-an-email', problem: 'no_at' } },
    ]);
    expect(worded(byNo(4).reason)).toBe('"not-an-email" is not a valid e-mail address: it has no @');
    expect(worded(byNo(4).reason, es)).toBe('"not-an-email" no es un correo válido: no tiene @');
    expect(worded(byNo(6).reason)).toContain('unknown type "PERSON"');
    expect(worded(byNo(7).reason)).toContain('unsupported country "US"');
    expect(worded(byNo(7).reason, es)).toContain('país no admitido "US"');
    expect(worded(byNo(11).reason)).toBe('duplicate of row 1 (same e-mail)');
    expect(worded(byNo(12).reason)).toBe('duplicate of row 1 (same externalUserId)');
    expect(worded(byNo(12).reason, es)).toBe('repite la fila 1 (mismo id_externo)');
    expect(worded(byNo(13).reason)).toBe('already exists here (customer existing-0001)');
    expect(worded(byNo(14).reason)).toBe('already exists here (customer other-0009)');
    expect(r.byReason).toMatchObject({ duplicate_in_file: 2, exists: 2, bad_email: 1 });
    const imp = await t.db.selectFrom('imports').selectAll().where('id', '=', r.importId).executeTakeFirstOrThrow();
    expect(imp).toMatchObject({ status: 'staged', totalRows: 16, validRows: 4, delimiter: ',' });
    expect(imp.fileSha256).toMatch(/^[0-9a-f]{64}$/);
    // Nothing reached Capa or the users table at the dry run.
    expect(await t.db.selectFrom('users').select('id').where('email', '=', 'good1@example.mx').executeTakeFirst()).toBeUndefined();
  });

  it('semicolons and a UTF-8 BOM are read; a quoted separator stays in its value', async () => {
    const r = await stageFile('semicolon-bom.csv');
    expect(r).toMatchObject({ totalRows: 2, validRows: 2, unknownColumns: [] });
    const rows = await t.db.selectFrom('importRows').selectAll().where('importId', '=', r.importId).orderBy('rowNo').execute();
    expect(rows[0]).toMatchObject({ externalUserId: 'semi-0001', alias: 'Pérez; Ana', country: 'MX', sendLink: 1 });
    expect(rows[1]).toMatchObject({ type: 'BUSINESS', country: 'DO', sendLink: 0 });
    expect((await t.db.selectFrom('imports').select('delimiter').where('id', '=', r.importId).executeTakeFirstOrThrow()).delimiter).toBe(
      ';',
    );
  });

  it('the template itself stages cleanly, even read in tiny chunks', async () => {
    const r = await stageImport(t.db, { source: bytes(TEMPLATE_CSV, 3), fileName: 'template.csv', createdBy: null, limits });
    expect(r).toMatchObject({ totalRows: 3, validRows: 3, invalidRows: 0 });
  });

  it('the same bytes again are recognised as an earlier file', async () => {
    const first = await stageFile('semicolon-bom.csv');
    const again = await stageFile('semicolon-bom.csv');
    expect(again.sameFileAs?.id).toBe(first.importId);
  });

  const malformed: Array<[string, string | Buffer, ImportFileError['code'], RegExp]> = [
    ['empty', '', 'empty', /file is empty/],
    ['only blank lines', '\n\r\n\n', 'empty', /file is empty/],
    ['header only', 'header-only.csv', 'header_only', /header row but no data rows/],
    ['no e-mail column', 'no-email-column.csv', 'header', /at least an "email" column \(found: name, phone\)/],
    ['invalid UTF-8 (Latin-1)', 'latin1.csv', 'encoding', /not valid UTF-8 \(near line 3\)/],
    ['UTF-16', Buffer.from('\ufeffemail\n', 'utf16le'), 'encoding', /UTF-16/],
    ['ragged row', 'ragged.csv', 'ragged', /Line 3: this row has 2 fields but the header has 3/],
    ['unclosed quote', 'unclosed-quote.csv', 'quoting', /never closed/],
    ['stray quote', 'stray-quote.csv', 'quoting', /Line 2: a double quote \("\) is misplaced/],
    ['Excel workbook', Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(64, 1)]), 'binary', /Excel workbook/],
    ['binary with NUL bytes', Buffer.concat([Buffer.from('email\nab'), Buffer.alloc(10, 0), Buffer.from('\n')]), 'binary', /binary data/],
    ['duplicate header', 'email,Email\na@example.mx,b@example.mx\n', 'header', /names the column "email" twice/],
  ];
  for (const [name, input, code, message] of malformed) {
    it(`malformed file (${name}) → a clear message and nothing stored`, async () => {
      const [imports, rows] = [await importCount(), await rowCount()];
      const source =
        typeof input === 'string' && input.endsWith('.csv') ? createReadStream(path.join(FIX, input)) : bytes(input as string | Buffer);
      const err = await stageImport(t.db, { source, fileName: 'bad.csv', createdBy: null, limits }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImportFileError);
      expect((err as ImportFileError).code).toBe(code);
      const { code: key, values } = (err as ImportFileError).detail;
      expect(en(key, values ?? {})).toMatch(message);
      // Every refusal has its Spanish words too.
      expect(es(key, values ?? {})).not.toBe(en(key, values ?? {}));
      expect(await importCount()).toBe(imports);
      expect(await rowCount()).toBe(rows);
    });
  }

  it('size and row limits → a clear message, nothing stored', async () => {
    const before = await importCount();
    const csv = 'email,country\n' + Array.from({ length: 6 }, (_, i) => `limit${i}@example.mx,MX`).join('\n');
    const tooMany = await stageImport(t.db, {
      source: bytes(csv, 50),
      fileName: 'x.csv',
      createdBy: null,
      limits: { maxBytes: 10_000, maxRows: 5 },
    }).catch((e: unknown) => e);
    expect(tooMany).toMatchObject({ code: 'too_many_rows' });
    expect(en((tooMany as ImportFileError).detail.code, (tooMany as ImportFileError).detail.values ?? {})).toContain(
      'more than 5 data rows',
    );
    expect(es((tooMany as ImportFileError).detail.code, (tooMany as ImportFileError).detail.values ?? {})).toContain(
      'más de 5 filas de datos',
    );
    const tooBig = await stageImport(t.db, {
      source: bytes(csv, 50),
      fileName: 'x.csv',
      createdBy: null,
      limits: { maxBytes: 100, maxRows: 100 },
    }).catch((e: unknown) => e);
    expect(tooBig).toMatchObject({ code: 'too_large' });
    expect(await importCount()).toBe(before);
  });
});
