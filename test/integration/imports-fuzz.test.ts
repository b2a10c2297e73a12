import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImportFileError } from '../../jobs/imports/parser.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { createTestDb, type TestDb } from '../support/runtime.js';
import { createConsoleI18n } from '../../app/i18n';

const english = createConsoleI18n('en');
const spanish = createConsoleI18n('es');

/**
 * Fuzzing the CSV path: whatever bytes arrive, staging either stores a consistent dry run
 * or refuses the file with a clear ImportFileError and stores nothing — never another error,
 * never a half-written import.
 */
describe('CSV staging under hostile input (property-based)', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb('sqlite');
  });
  afterAll(async () => {
    await t?.close();
  });

  async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
  }
  const counts = async () => ({
    imports: Number(
      (
        await t.db
          .selectFrom('imports')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    ),
    rows: Number(
      (
        await t.db
          .selectFrom('importRows')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    ),
  });

  async function check(bytes: Uint8Array, chunkSize: number) {
    const before = await counts();
    try {
      const r = await stageImport(t.db, {
        source: chunks(bytes, chunkSize),
        fileName: 'fuzz.csv',
        createdBy: null,
        limits: { maxBytes: 1_000_000, maxRows: 5_000 },
      });
      const after = await counts();
      expect(r.validRows + r.invalidRows).toBe(r.totalRows);
      expect(after.imports).toBe(before.imports + 1);
      expect(after.rows).toBe(before.rows + r.totalRows);
    } catch (err) {
      expect(err).toBeInstanceOf(ImportFileError);
      // A refusal the operator can read, in both languages.
      const { code, values } = (err as ImportFileError).detail;
      for (const i18n of [english, spanish]) {
        expect(i18n.exists(code), code).toBe(true);
        expect(i18n.t(code, values ?? {}).length).toBeGreaterThan(10);
      }
      expect(await counts()).toEqual(before);
    }
  }

  const cell = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.constantFrom('"', '""', '"a,b"', 'x"y', '\n', '\r\n', ';', ',', 'MX', 'DO', 'BUSINESS', 'yes', 'a@b.mx', '\u0000', '\ufeff'),
  );
  const csvText = fc
    .tuple(
      fc.constantFrom(
        'email,type,country',
        'EMAIL;Type;Country;sendLink',
        'externalUserId,email,alias,country,sendLink,extra',
        'email',
        '',
      ),
      fc.array(fc.array(cell, { maxLength: 7 }), { maxLength: 30 }),
      fc.constantFrom(',', ';'),
    )
    .map(([header, rows, sep]) => `${header}\n${rows.map((r) => r.join(sep)).join('\n')}`);

  it('structured CSV-like text with quoting, separators and line breaks', async () => {
    await fc.assert(
      fc.asyncProperty(csvText, fc.integer({ min: 1, max: 64 }), async (text, size) => check(new TextEncoder().encode(text), size)),
      { numRuns: 120, seed: 7 },
    );
  });

  it('arbitrary bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.integer({ min: 1, max: 512 }), async (bytes, size) => check(bytes, size)),
      { numRuns: 120, seed: 8 },
    );
  });
});
