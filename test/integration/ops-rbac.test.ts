import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { buildOpsApp, get, postForm, serveWebApp, signedInOperator, type Served, type TestOperator } from './ops-support.js';

describe('operations views: who may see and do what (real HTTP against createWebApp)', () => {
  let rt: TestRuntime;
  let web: Served;
  let cleanup: () => void;
  const ops: Record<'viewer' | 'compliance' | 'admin', TestOperator> = {} as never;

  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
    const b = await buildOpsApp();
    cleanup = b.cleanup;
    web = await serveWebApp(b.build);
    for (const role of ['viewer', 'compliance', 'admin'] as const) ops[role] = await signedInOperator(rt.db, role);
  }, 120_000);
  afterAll(async () => {
    await web?.close();
    await rt?.close();
    cleanup?.();
  });

  it('bull-board answers admins only: signed out → /login, viewer and compliance → 403', async () => {
    const anon = await get(web.url, '/admin/queues', null);
    expect(anon.status).toBe(302);
    expect(anon.headers.get('location')).toBe('/login?next=%2Fadmin%2Fqueues');
    const api = await get(web.url, '/admin/queues/api/queues', null);
    expect(api.status).toBe(302);
    for (const role of ['viewer', 'compliance'] as const) {
      const page = await get(web.url, '/admin/queues', ops[role]);
      expect(page.status, role).toBe(403);
      const apiRes = await get(web.url, '/admin/queues/api/queues', ops[role]);
      expect(apiRes.status, role).toBe(403);
      expect(await apiRes.text()).not.toContain('webhooks');
    }
    const ok = await get(web.url, '/admin/queues', ops.admin);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('<base href="/admin/queues');
    const list = await get(web.url, '/admin/queues/api/queues', ops.admin);
    expect(list.status).toBe(200);
    const body = (await list.json()) as { queues: Array<{ name: string }> };
    expect(body.queues.map((q) => q.name).sort()).toEqual(
      rt.queues
        .allQueues()
        .map((q) => q.name)
        .sort(),
    );
  });

  it('a forged or revoked cookie does not open bull-board', async () => {
    const forged = await get(web.url, '/admin/queues', { ...ops.admin, cookie: 'kyc_session=abc.def' });
    expect(forged.status).toBe(302);
    const other = await signedInOperator(rt.db, 'admin', 'revoked');
    await rt.db.updateTable('sessions').set({ revokedAt: new Date().toISOString() }).where('operatorId', '=', other.id).execute();
    expect((await get(web.url, '/admin/queues', other)).status).toBe(302);
  });

  it('bull-board writes need our own origin and are audited', async () => {
    const cross = await fetch(`${web.url}/admin/queues/api/queues/webhooks/pause`, {
      method: 'PUT',
      headers: { cookie: ops.admin.cookie, origin: 'https://evil.example' },
    });
    expect(cross.status).toBe(403);
    expect(await rt.queues.queue('webhooks').isPaused()).toBe(false);
    const same = await fetch(`${web.url}/admin/queues/api/queues/webhooks/pause`, {
      method: 'PUT',
      headers: { cookie: ops.admin.cookie, origin: web.url },
    });
    expect(same.status).toBe(200);
    expect(await rt.queues.queue('webhooks').isPaused()).toBe(true);
    await rt.queues.queue('webhooks').resume();
    const audit = await rt.db
      .selectFrom('auditLog')
      .select(['action', 'outcome', 'targetId'])
      .where('action', '=', 'queues.board')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.outcome)).toEqual(['denied', 'ok']);
    expect(audit[1]!.targetId).toContain('/admin/queues/api/queues/webhooks/pause');
  });

  const views: Array<[string, 'viewer' | 'compliance' | 'admin']> = [
    ['/webhooks', 'viewer'],
    ['/webhooks/1', 'viewer'],
    ['/capa/deliveries', 'compliance'],
    ['/queues', 'admin'],
    ['/admin/settings', 'admin'],
  ];

  it.each(views)('%s needs %s: signed out → /login, lower roles → 403', async (path, min) => {
    await rt.db
      .insertInto('webhookInbox')
      .values({
        receivedAt: new Date().toISOString(),
        rawBody: '{}',
        headers: '{}',
        signatureVerdict: 'valid',
        secretIndex: 0,
        eventType: 'KYC',
        eventName: 'CREATED_KYC',
        externalUserId: 'rbac-1',
        dedupeKey: null,
        duplicateOf: null,
        status: 'processed',
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const anon = await get(web.url, path, null);
    expect(anon.status).toBe(302);
    expect(anon.headers.get('location')).toMatch(/^\/login\?next=/);
    const rank = { viewer: 0, compliance: 1, admin: 2 } as const;
    for (const role of ['viewer', 'compliance', 'admin'] as const) {
      const r = await get(web.url, path, ops[role]);
      expect(r.status, `${role} on ${path}`).toBe(rank[role] >= rank[min] ? 200 : 403);
    }
  });

  it.each([
    ['/webhooks/1', { intent: 'reprocess', requestId: 'rbac-request-1' }],
    ['/queues', { intent: 'retry-kind', queue: 'capa', name: 'fetch-details' }],
    ['/capa/deliveries', { intent: 'retry', id: 'nope', requestId: 'rbac-request-2' }],
    ['/admin/settings', { intent: 'set-url', url: 'https://example.test/webhooks/capa' }],
  ] as const)('actions on %s are admin-only (viewer and compliance get 403, nothing changes)', async (path, fields) => {
    const before = await rt.db
      .selectFrom('auditLog')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('outcome', '!=', 'denied')
      .executeTakeFirstOrThrow();
    for (const role of ['viewer', 'compliance'] as const) {
      const r = await postForm(web.url, path, ops[role], fields);
      expect(r.status, `${role} POST ${path}`).toBe(403);
    }
    const after = await rt.db
      .selectFrom('auditLog')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('outcome', '!=', 'denied')
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
    // Without the CSRF token even an admin is refused.
    const noToken = await fetch(`${web.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: web.url, cookie: ops.admin.cookie },
      body: new URLSearchParams(fields),
    });
    expect(noToken.status).toBe(403);
  });
});
