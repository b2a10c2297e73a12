import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { action, loader } from '../../app/routes/webhooks.capa.js';
import { createTestRuntime, WEBHOOK_SECRET, type TestRuntime } from '../support/runtime.js';
import { startBuiltApp } from '../support/web.js';

/** The Remix route (fallback when the Remix build is served without server/web.ts) runs the same intake. */
describe('app/routes/webhooks.capa (Remix route)', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
  });
  afterAll(async () => {
    await rt?.close();
  });

  const req = (body: string, sig?: string) =>
    new Request('http://x/webhooks/capa', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(sig ? { 'capa-signature': sig } : {}) },
      body,
    });

  it('stores and acknowledges a signed delivery', async () => {
    const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'route-1' });
    const res = await action({ request: req(body, signBody(body, WEBHOOK_SECRET)), params: {}, context: {} });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: number };
    const row = await rt.db.selectFrom('webhookInbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'received', signatureVerdict: 'valid', externalUserId: 'route-1' });
  });

  it('refuses a bad signature with 401 and an oversized body with 413', async () => {
    const body = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'route-2' });
    expect((await action({ request: req(body, 'f'.repeat(64)), params: {}, context: {} })).status).toBe(401);
    const big = 'x'.repeat(300 * 1024);
    expect((await action({ request: req(big, signBody(big, WEBHOOK_SECRET)), params: {}, context: {} })).status).toBe(413);
  });

  it('answers GET with 405', async () => {
    expect((await loader()).status).toBe(405);
  });
});

/** The production path: server/web.ts serving the Remix build, whose express fast path answers first. */
describe('POST /webhooks/capa on the served build (server/web.ts)', () => {
  let rt: TestRuntime;
  let server: Server;
  let base: string;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
    ({ server, base } = await startBuiltApp());
  }, 120_000);
  afterAll(async () => {
    await new Promise((r) => (server ? server.close(r) : r(null)));
    await rt?.close();
  });

  const refusedTooLarge = async (): Promise<number> => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const m = /^kyc_webhooks_refused_total\{reason="too_large"\} (\d+)$/m.exec(await res.text());
    return m ? Number(m[1]) : 0;
  };
  const post = (body: string) =>
    fetch(`${base}/webhooks/capa`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, WEBHOOK_SECRET) },
      body,
    });

  it('stores a signed delivery in the services the test installed', async () => {
    const res = await post(JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'served-1' }));
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: number };
    const row = await rt.db.selectFrom('webhookInbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'received', externalUserId: 'served-1' });
  });

  it('refuses an oversized body with 413, stores nothing, and counts it in /metrics', async () => {
    const before = await refusedTooLarge();
    const rows = async () =>
      Number(
        (
          await rt.db
            .selectFrom('webhookInbox')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const stored = await rows();
    const res = await post('x'.repeat(300 * 1024));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ ok: false });
    expect(await rows()).toBe(stored);
    expect(await refusedTooLarge()).toBe(before + 1);
  });
});
