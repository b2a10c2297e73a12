import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { action as uploadAction } from '../../app/routes/imports.new';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { call, ORIGIN, signInAs, type Browser } from './console-helpers.js';

/**
 * Oversized form bodies are refused before they are held in memory: the CSRF guard reads at most
 * IMPORT_MAX_BYTES + 1 MiB, whether or not the request declares its length.
 */
let rt: TestRuntime;
let compliance: Browser & { operatorId: string };
const LIMIT = 64 * 1024; // IMPORT_MAX_BYTES for this test; the guard allows LIMIT + 1 MiB

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false, env: { IMPORT_MAX_BYTES: String(LIMIT) } });
  compliance = await signInAs(rt.db, 'compliance');
}, 60_000);
afterAll(async () => { await rt?.close(); });

function uploadForm(csv: string): FormData {
  const fd = new FormData();
  fd.set('csrf', compliance.csrf);
  fd.set('file', new File([csv], 'customers.csv', { type: 'text/csv' }));
  return fd;
}
async function multipart(fd: FormData): Promise<{ body: ArrayBuffer; type: string }> {
  const r = new Response(fd);
  return { body: await r.arrayBuffer(), type: r.headers.get('content-type')! };
}
const headers = (type: string) => ({ 'content-type': type, origin: ORIGIN, cookie: compliance.cookie });
const csvOf = (bytes: number) => {
  const lines = ['externalUserId,email'];
  for (let i = 0, size = 0; size < bytes; i++) {
    const line = `big-${i},big.${i}@example.mx`;
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
};
const imports = async () => Number((await rt.db.selectFrom('imports').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
const refusals = async () => rt.db.selectFrom('auditLog').select(['outcome', 'operatorId']).where('action', '=', 'request.too_large').execute();

describe('form size limit', () => {
  it('a body over the limit with a declared length is refused with 413, audited, and stores nothing', async () => {
    const { body, type } = await multipart(uploadForm(csvOf(2 * 1024 * 1024)));
    const res = await call(uploadAction, new Request(`${ORIGIN}/imports/new`, { method: 'POST', body, headers: headers(type) }));
    expect(res.status).toBe(413);
    expect(res.data).toMatch(/larger than 1 MB and was refused before it was read.*split the CSV file/);
    expect(await imports()).toBe(0);
    expect(await refusals()).toEqual([{ outcome: 'denied', operatorId: compliance.operatorId }]);
  });

  it('a streamed body without Content-Length is cut off at the limit too', async () => {
    const { body: whole, type } = await multipart(uploadForm(csvOf(3 * 1024 * 1024)));
    const body = new Uint8Array(whole);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= body.length) return c.close();
        const part = body.subarray(sent, sent + 64 * 1024);
        sent += part.length;
        c.enqueue(part);
      },
    });
    const res = await call(uploadAction, new Request(`${ORIGIN}/imports/new`, { method: 'POST', body: stream, headers: headers(type), duplex: 'half' } as RequestInit));
    expect(res.status).toBe(413);
    // The guard stopped reading shortly after the limit; the rest of the upload was never pulled.
    expect(sent).toBeLessThan(LIMIT + 1024 * 1024 + 256 * 1024);
    expect(await imports()).toBe(0);
  });

  it('under the form limit, the import rules still decide: too big a file for an import, and a good file', async () => {
    const tooBig = await multipart(uploadForm(csvOf(LIMIT + 10_000)));
    const r1 = await call(uploadAction, new Request(`${ORIGIN}/imports/new`, { method: 'POST', body: tooBig.body, headers: headers(tooBig.type) }));
    expect(r1.status).toBe(413);
    expect(r1.data).toEqual({ error: expect.stringMatching(/The file is larger than 64 KB/) });
    const ok = await multipart(uploadForm('externalUserId,email\nsmall-1,small.1@example.mx\n'));
    const r2 = await call(uploadAction, new Request(`${ORIGIN}/imports/new`, { method: 'POST', body: ok.body, headers: headers(ok.type) }));
    expect(r2.status).toBe(302);
    expect(r2.location).toMatch(/^\/imports\/[0-9a-f-]+$/);
    expect(await imports()).toBe(1);
  });
});
