import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { action, loader } from '../../app/routes/webhooks.capa.js';
import { createTestRuntime, WEBHOOK_SECRET, type TestRuntime } from '../support/runtime.js';

/** The Remix route (fallback when the Remix build is served without server/web.ts) runs the same intake. */
describe('app/routes/webhooks.capa (Remix route)', () => {
  let rt: TestRuntime;
  beforeAll(async () => { rt = await createTestRuntime({ worker: false }); });
  afterAll(async () => { await rt?.close(); });

  const req = (body: string, sig?: string) =>
    new Request('http://x/webhooks/capa', { method: 'POST', headers: { 'content-type': 'application/json', ...(sig ? { 'capa-signature': sig } : {}) }, body });

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
