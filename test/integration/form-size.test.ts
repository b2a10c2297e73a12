import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_FORM_MAX_BYTES } from '../../app/auth.server';
import { action as uploadAction } from '../../app/routes/imports.new';
import { action as loginAction } from '../../app/routes/login';
import { action as setupAction } from '../../app/routes/setup';
import { getFixedT } from '../../app/i18n';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { call, cookieFrom, makeOperator, ORIGIN, PASSWORD, post, signInAs, type Browser } from './console-helpers.js';

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
afterAll(async () => {
  await rt?.close();
});

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
const imports = async () =>
  Number(
    (
      await rt.db
        .selectFrom('imports')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
const refusals = async () =>
  rt.db.selectFrom('auditLog').select(['outcome', 'operatorId']).where('action', '=', 'request.too_large').execute();

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
    const res = await call(
      uploadAction,
      new Request(`${ORIGIN}/imports/new`, { method: 'POST', body: stream, headers: headers(type), duplex: 'half' } as RequestInit),
    );
    expect(res.status).toBe(413);
    // The guard stopped reading shortly after the limit; the rest of the upload was never pulled.
    expect(sent).toBeLessThan(LIMIT + 1024 * 1024 + 256 * 1024);
    expect(await imports()).toBe(0);
  });

  it('under the form limit, the import rules still decide: too big a file for an import, and a good file', async () => {
    const tooBig = await multipart(uploadForm(csvOf(LIMIT + 10_000)));
    const r1 = await call(
      uploadAction,
      new Request(`${ORIGIN}/imports/new`, { method: 'POST', body: tooBig.body, headers: headers(tooBig.type) }),
    );
    expect(r1.status).toBe(413);
    // The page words the code in the reader's language; the limit travels as a value.
    expect(r1.data).toEqual({ error: { code: 'imports:file_errors.too_large_kb', values: { kb: 64 } } });
    const ok = await multipart(uploadForm('externalUserId,email\nsmall-1,small.1@example.mx\n'));
    const r2 = await call(uploadAction, new Request(`${ORIGIN}/imports/new`, { method: 'POST', body: ok.body, headers: headers(ok.type) }));
    expect(r2.status).toBe(302);
    expect(r2.location).toMatch(/^\/imports\/[0-9a-f-]+$/);
    expect(await imports()).toBe(1);
  });
});

/**
 * Forms posted before sign-in (/login, /setup) are refused beyond PUBLIC_FORM_MAX_BYTES, the
 * same way: nothing is read past the limit, declared length or not.
 */
describe('form size limit before sign-in', () => {
  /** A form body of `bytes` bytes, handed out in 1 KiB chunks; `pulled()` says how much was taken. */
  function meteredForm(bytes: number) {
    const prefix = new TextEncoder().encode(`email=someone%40desk.test&password=${encodeURIComponent(PASSWORD)}&pad=`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= bytes) return c.close();
        const part = sent === 0 ? prefix : new Uint8Array(Math.min(1024, bytes - sent)).fill(0x61);
        sent += part.length;
        c.enqueue(part);
      },
    });
    return { stream, pulled: () => sent };
  }
  const anonymousRefusals = async () =>
    rt.db
      .selectFrom('auditLog')
      .select(['targetId', 'operatorId', 'actor'])
      .where('action', '=', 'request.too_large')
      .where('actor', '=', 'anonymous')
      .execute();
  const formPost = (path: string, body: ReadableStream<Uint8Array>, extra: Record<string, string> = {}) =>
    new Request(`${ORIGIN}${path}`, {
      method: 'POST',
      body,
      duplex: 'half',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, ...extra },
    } as RequestInit);

  it('a 30 MB sign-in form with a declared length is refused with 413 without reading its body', async () => {
    const big = meteredForm(30 * 1024 * 1024);
    const res = await call(loginAction, formPost('/login', big.stream, { 'content-length': String(30 * 1024 * 1024) }));
    expect(res.status).toBe(413);
    expect(res.data).toEqual({ error: { code: 'login.too_large', values: { kb: 16 } } });
    expect(getFixedT('en', 'auth')(res.data.error.code, res.data.error.values)).toMatch(
      /larger than 16 KB and was refused before it was read/,
    );
    // The stream hands out its first chunk on its own; nothing beyond that was asked for.
    expect(big.pulled()).toBeLessThanOrEqual(2048);
    expect(await anonymousRefusals()).toEqual([{ targetId: 'POST /login', operatorId: null, actor: 'anonymous' }]);
  });

  it('a streamed sign-in form without Content-Length is cut off just past the limit', async () => {
    const big = meteredForm(30 * 1024 * 1024);
    const res = await call(loginAction, formPost('/login', big.stream));
    expect(res.status).toBe(413);
    expect(big.pulled()).toBeGreaterThan(PUBLIC_FORM_MAX_BYTES);
    expect(big.pulled()).toBeLessThan(PUBLIC_FORM_MAX_BYTES + 8 * 1024);
    // The setup form is held to the same limit.
    const setup = meteredForm(1024 * 1024);
    const r2 = await call(setupAction, formPost('/setup', setup.stream));
    expect(r2.status).toBe(413);
    expect(r2.data).toEqual({ errors: {}, form: { code: 'login.too_large', values: { kb: 16 } } });
    expect(setup.pulled()).toBeLessThan(PUBLIC_FORM_MAX_BYTES + 8 * 1024);
    expect((await anonymousRefusals()).map((r) => r.targetId)).toEqual(['POST /login', 'POST /login', 'POST /setup']);
  });

  it('a normal sign-in still works, and a form just under the limit is still read', async () => {
    const op = await makeOperator(rt.db, 'viewer');
    const ok = await call(loginAction, post('/login', null, { email: op.email, password: PASSWORD, next: '/users' }));
    expect(ok.status).toBe(302);
    expect(ok.location).toBe('/users');
    expect(cookieFrom(ok)).toMatch(/^kyc_session=/);
    const padded = await call(
      loginAction,
      post('/login', null, { email: op.email, password: PASSWORD, pad: 'x'.repeat(PUBLIC_FORM_MAX_BYTES - 200) }),
    );
    expect(padded.status).toBe(302);
  });
});
