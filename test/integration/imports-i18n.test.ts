import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsoleI18n } from '../../app/i18n';
import { loader as importLoader } from '../../app/routes/imports.$id';
import { loader as downloadLoader } from '../../app/routes/imports.$id_.download';
import { action as uploadAction } from '../../app/routes/imports.new';
import { loader as templateLoader } from '../../app/routes/imports.template[.]csv';
import { setOperatorPreferences } from '../../db/repositories/operators.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { call, get, ORIGIN, signInAs, type Browser } from './console-helpers.js';

/**
 * The import screens and downloads in the reader's language: an operator who reads Spanish gets
 * the template, the dry run's reasons, a file's refusal and the errors file in Spanish (column
 * names, statuses, reasons, yes/no); an English reader gets the same import in English. What was
 * stored is codes and values, so both read the same rows; a file saved with our Spanish column
 * names uploads again.
 */
const spanish = createConsoleI18n('es');
const english = createConsoleI18n('en');
type Said = { code: string; values?: Record<string, unknown> };

let rt: TestRuntime;
let ana: Browser; // Spanish
let bob: Browser; // no setting: DEFAULT_LOCALE (en)

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  const a = await signInAs(rt.db, 'compliance');
  await setOperatorPreferences(rt.db, a.operatorId, { locale: 'es', timeZone: 'America/Mexico_City' });
  ana = a;
  bob = await signInAs(rt.db, 'compliance');
}, 60_000);

afterAll(async () => {
  await rt?.close();
});

/** Uploads a file through the new-import form (multipart, the form's token first). */
async function upload(b: Browser, name: string, content: string | Buffer) {
  const form = new FormData();
  form.set('csrf', b.csrf);
  form.set('file', new File([typeof content === 'string' ? content : new Uint8Array(content)], name, { type: 'text/csv' }));
  const request = new Request(`${ORIGIN}/imports/new`, { method: 'POST', body: form, headers: { origin: ORIGIN, cookie: b.cookie } });
  return call(uploadAction, request);
}

const importIdOf = (location: string | null) => /^\/imports\/([0-9a-f-]{36})$/.exec(location ?? '')![1]!;

async function download(b: Browser, id: string, kind: 'errors' | 'results'): Promise<string[]> {
  const r = await call(downloadLoader, get(`/imports/${id}/download?kind=${kind}`, b), { id });
  expect(r.status).toBe(200);
  return String(r.data)
    .replace(/^\uFEFF/, '')
    .trimEnd()
    .split('\r\n');
}

const BAD = [
  'externalUserId,email,type,alias,country,sendLink',
  'i18n-1,bien@example.mx,INDIVIDUAL,,MX,no',
  'i18n-2,not-an-email,INDIVIDUAL,,MX,no',
  'i18n-3,us@example.mx,INDIVIDUAL,,US,yes',
  'i18n-4,empresa@example.mx,BUSINESS,,MX,yes',
].join('\r\n');

describe('imports in the reader’s language', () => {
  it('the template: Spanish column names and sí/no for a Spanish reader, English for an English one; both upload cleanly', async () => {
    const es = await call(templateLoader, get('/imports/template.csv', ana));
    const esLines = String(es.data)
      .replace(/^\uFEFF/, '')
      .trimEnd()
      .split('\r\n');
    expect(esLines[0]).toBe('id_externo,correo,tipo,alias,país,enviar_enlace');
    expect(esLines.slice(1).map((l) => l.split(',').at(-1))).toEqual(['sí', 'sí', 'no']);
    const en = await call(templateLoader, get('/imports/template.csv', bob));
    expect(
      String(en.data)
        .replace(/^\uFEFF/, '')
        .split('\r\n')[0],
    ).toBe('externalUserId,email,type,alias,country,sendLink');

    for (const [b, body] of [
      [ana, String(es.data)],
      [bob, String(en.data)],
    ] as const) {
      const r = await upload(b, 'plantilla.csv', body);
      expect(r.status).toBe(302);
      const id = importIdOf(r.location);
      const page = await call(importLoader, get(`/imports/${id}`, b), { id });
      expect(page.data.import).toMatchObject({ totalRows: 3, validRows: 3, invalidRows: 0, unknownColumns: [] });
    }
  });

  it('the dry run: each row’s reasons read in Spanish or English from the same stored codes', async () => {
    const r = await upload(ana, 'clientes.csv', BAD);
    expect(r.status).toBe(302);
    const id = importIdOf(r.location);
    const seenBy = async (b: Browser, i18n: typeof spanish) => {
      const page = await call(importLoader, get(`/imports/${id}?rows=problems`, b), { id });
      return {
        summary: page.data.import.byReason.map((x: { code: string; n: number }) => `${i18n.t(`imports:reason_labels.${x.code}`)}: ${x.n}`),
        reasons: page.data.rows.map((row: { reasons: Said[] }) => row.reasons.map((m) => i18n.t(m.code, m.values ?? {})).join('; ')),
      };
    };
    expect(await seenBy(ana, spanish)).toEqual({
      summary: ['correo inválido: 1', 'país no admitido: 1', 'las empresas no pueden recibir un enlace KYC: 1'],
      reasons: [
        '"not-an-email" no es un correo válido: no tiene @',
        'país no admitido "US" (solo hay enlaces KYC para MX y DO)',
        'las empresas (BUSINESS) se verifican con KYB, no con un enlace KYC: pon enviar_enlace en no',
      ],
    });
    expect(await seenBy(bob, english)).toEqual({
      summary: ['bad e-mail: 1', 'unsupported country: 1', 'business customers cannot get a KYC link: 1'],
      reasons: [
        '"not-an-email" is not a valid e-mail address: it has no @',
        'unsupported country "US" (KYC links exist for MX and DO only)',
        'BUSINESS customers verify through KYB, not a KYC link: set sendLink to no',
      ],
    });
  });

  it('the errors file: Spanish column names, statuses and reasons for a Spanish reader; it uploads again with the same verdicts', async () => {
    const staged = await upload(ana, 'clientes.csv', BAD);
    const id = importIdOf(staged.location);
    const es = await download(ana, id, 'errors');
    expect(es[0]).toBe('fila,línea,id_externo,correo,tipo,alias,país,enviar_enlace,estado,motivo,id_cliente,url_cliente');
    expect(es.slice(1)).toEqual([
      '2,3,i18n-2,not-an-email,INDIVIDUAL,,MX,no,inválida,"""not-an-email"" no es un correo válido: no tiene @",,',
      '3,4,i18n-3,us@example.mx,INDIVIDUAL,,US,sí,inválida,"país no admitido ""US"" (solo hay enlaces KYC para MX y DO)",,',
      '4,5,i18n-4,empresa@example.mx,BUSINESS,,MX,sí,inválida,"las empresas (BUSINESS) se verifican con KYB, no con un enlace KYC: pon enviar_enlace en no",,',
    ]);
    const en = await download(bob, id, 'errors');
    expect(en[0]).toBe('row,line,externalUserId,email,type,alias,country,sendLink,status,reason,customerId,customerUrl');
    expect(en[1]).toBe('2,3,i18n-2,not-an-email,INDIVIDUAL,,MX,no,invalid,"""not-an-email"" is not a valid e-mail address: it has no @",,');

    // Fixed by hand and uploaded again as it is: our Spanish column names are read back.
    const fixed = `${es.join('\r\n').replace('not-an-email,', 'corregido@example.mx,')}\r\n`;
    const again = await upload(ana, 'errores.csv', fixed);
    expect(again.status).toBe(302);
    const againId = importIdOf(again.location);
    const page = await call(importLoader, get(`/imports/${againId}?rows=all`, ana), { id: againId });
    expect(page.data.import).toMatchObject({ totalRows: 3, validRows: 1, invalidRows: 2 });
    expect(page.data.import.unknownColumns).toEqual(['fila', 'línea', 'estado', 'motivo', 'id_cliente', 'url_cliente']);
    expect(
      page.data.rows.map((row: { externalUserId: string; email: string; sendLink: boolean }) => [
        row.externalUserId,
        row.email,
        row.sendLink,
      ]),
    ).toEqual([
      ['i18n-2', 'corregido@example.mx', false],
      ['i18n-3', 'us@example.mx', true],
      ['i18n-4', 'empresa@example.mx', true],
    ]);
  });

  it('a download of an import that does not exist says so in the reader’s words', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const es = await call(downloadLoader, get(`/imports/${id}/download?kind=errors`, ana), { id });
    expect([es.status, es.data]).toEqual([
      404,
      'No existe esa importación. Puede que el enlace esté mal escrito; ábrela desde la lista de importaciones.',
    ]);
    const en = await call(downloadLoader, get(`/imports/${id}/download?kind=results`, bob), { id });
    expect([en.status, en.data]).toEqual([404, 'No such import. It may have been typed wrong; open it from the Imports list.']);
  });

  it('a file that cannot be read is refused in the reader’s words, and nothing is stored', async () => {
    const before = (await rt.db.selectFrom('imports').select('id').execute()).length;
    const ragged = readFileSync(path.resolve('test/fixtures/imports/ragged.csv'));
    const es = await upload(ana, 'ragged.csv', ragged);
    const en = await upload(bob, 'ragged.csv', ragged);
    expect(es.status).toBe(422);
    expect(es.data.error).toEqual(en.data.error);
    expect(spanish.t(es.data.error.code, es.data.error.values)).toMatch(/^Línea 3: esta fila tiene 2 campos pero el encabezado tiene 3\./);
    expect(english.t(en.data.error.code, en.data.error.values)).toMatch(/^Line 3: this row has 2 fields but the header has 3\./);
    const none = await upload(ana, 'vacío.csv', '');
    expect(spanish.t(none.data.error.code, none.data.error.values ?? {})).toBe(
      'El archivo está vacío. Descarga la plantilla, llénala y vuelve a subirla.',
    );
    expect((await rt.db.selectFrom('imports').select('id').execute()).length).toBe(before);
  });
});
