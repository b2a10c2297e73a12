import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { createTestRuntime, postgresAvailable, WEBHOOK_SECRET, type TestRuntime } from '../support/runtime.js';

const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

/**
 * Hostile input at the intake: whatever arrives, the answer is a precise 2xx/4xx (never 5xx),
 * every answered request left exactly one complete row (or none, for 413), and nothing crashes.
 */
describe.each(kinds)('webhook intake under hostile input (property-based) on %s', (kind) => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false, dbKind: kind });
  });
  afterAll(async () => {
    await rt?.close();
  });

  const count = async () =>
    Number(
      (
        await rt.db
          .selectFrom('webhookInbox')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  async function send(body: Uint8Array | string, headers: Record<string, string>) {
    const before = await count();
    const res = await fetch(rt.intakeUrl, { method: 'POST', headers, body: typeof body === 'string' ? body : Buffer.from(body) });
    const after = await count();
    return { status: res.status, added: after - before, json: await res.json().catch(() => null) };
  }

  const contentTypes = fc.constantFrom(
    'application/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    '',
  );

  it('random bytes with random or valid signatures: 401 or 400, one stored row each', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), contentTypes, async (bytes, signIt, ct) => {
        const sig = signIt ? signBody(bytes, WEBHOOK_SECRET) : Buffer.from(bytes.slice(0, 32)).toString('hex').padEnd(64, '0');
        const r = await send(bytes, { 'capa-signature': sig, ...(ct ? { 'content-type': ct } : {}) });
        expect([200, 400, 401]).toContain(r.status);
        expect(r.added).toBe(1);
        if (!signIt) expect(r.status).toBe(401);
      }),
      { numRuns: 60, seed: 1 },
    );
  });

  it('arbitrary JSON values, signed: 2xx for objects with type/event strings, 400 otherwise', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue(),
          fc.record({ type: fc.string(), event: fc.fullUnicodeString(), externalUserId: fc.option(fc.fullUnicodeString()) }),
        ),
        async (value) => {
          const body = JSON.stringify(value) ?? 'null';
          const r = await send(body, { 'content-type': 'application/json', 'capa-signature': signBody(body, WEBHOOK_SECRET) });
          const v = value as Record<string, unknown> | null;
          const wellFormed =
            v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v.type === 'string' && typeof v.event === 'string';
          expect(r.status).toBe(wellFormed ? 200 : 400);
          expect(r.added).toBe(1);
        },
      ),
      { numRuns: 80, seed: 2 },
    );
  });

  it('a JSON bomb (deep nesting) and huge headers are answered without a crash', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000); // 200 KB, under the size limit
    const r1 = await send(deep, { 'content-type': 'application/json', 'capa-signature': signBody(deep, WEBHOOK_SECRET) });
    expect(r1.status).toBe(400);
    const wide = JSON.stringify({
      type: 'KYC',
      event: 'CREATED_KYC',
      externalUserId: 'w',
      pad: Array.from({ length: 20_000 }, (_, i) => i),
    });
    const r2 = await send(wide, {
      'content-type': 'application/json',
      'capa-signature': signBody(wide, WEBHOOK_SECRET),
      'x-junk': 'y'.repeat(12_000),
    });
    expect(r2.status).toBe(200);
    // Headers beyond Node's limit are refused by the HTTP parser itself with 431, before any write.
    const before = await count();
    const r3 = await fetch(rt.intakeUrl, {
      method: 'POST',
      headers: { 'capa-signature': 'a'.repeat(64), 'x-huge': 'z'.repeat(40_000) },
      body: '{}',
    })
      .then((r) => r.status)
      .catch(() => 'connection closed');
    expect([431, 'connection closed']).toContain(r3);
    expect(await count()).toBe(before);
  });

  it('unicode externalUserIds are kept; the raw body is kept as sent; a NUL is stored as U+FFFD', async () => {
    const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'ñandú-🦤-\u0000-\u202e' });
    const r = await send(body, { 'content-type': 'application/json', 'capa-signature': signBody(body, WEBHOOK_SECRET) });
    expect(r.status).toBe(200);
    const row = await rt.db
      .selectFrom('webhookInbox')
      .selectAll()
      .where('id', '=', (r.json as { id: number }).id)
      .executeTakeFirstOrThrow();
    expect(row.rawBody).toBe(body);
    expect(row.externalUserId).toBe('ñandú-🦤-\ufffd-\u202e');
  });
});
