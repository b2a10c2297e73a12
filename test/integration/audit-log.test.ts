import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { action as auditAction, loader as auditLoader } from '../../app/routes/audit._index';
import { loader as csvLoader } from '../../app/routes/audit[.]csv';
import { AUDIT_ACTION_LIST, AUDIT_ACTIONS } from '../../db/repositories/audit-actions.js';
import { csvField } from '../../db/repositories/audit-query.js';
import { appendAudit, verifyAuditChain } from '../../db/repositories/audit.js';
import { isPostgres } from '../../db/migration-helpers.js';
import { createTestDb, createTestRuntime, postgresAvailable, type TestDb, type TestRuntime } from '../support/runtime.js';
import { call, get, post, signInAs, type Browser } from './console-helpers.js';

/**
 * Extends the append-only checks in repositories.test.ts (which covers a bulk UPDATE/DELETE and
 * concurrent appends) with what an attacker would try next, and the /audit page itself.
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

async function dropDeleteGuard(t: TestDb) {
  // An attacker with DB access removes the guard first.
  if (isPostgres(t.db)) await sql`drop trigger audit_log_append_only on audit_log`.execute(t.db);
  else await sql`drop trigger audit_log_no_delete`.execute(t.db);
}

for (const kind of kinds) {
  describe(`audit chain on ${kind}`, () => {
    let t: TestDb;
    beforeAll(async () => { t = await createTestDb(kind); });
    afterAll(async () => { await t?.close(); });

    it('refuses a targeted UPDATE of one row, a DELETE of the newest row, and (PostgreSQL) TRUNCATE', async () => {
      const rows = [];
      for (let i = 0; i < 4; i++) rows.push(await appendAudit(t.db, { actor: 'a@desk.test', action: AUDIT_ACTIONS.caseNote, targetType: 'user', targetId: `u${i}`, outcome: 'ok' }));
      await expect(sql`update audit_log set outcome = 'denied' where id = ${rows[1]!.id}`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`update audit_log set hash = ${'0'.repeat(64)} where id = ${rows[3]!.id}`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`delete from audit_log where id = ${rows[3]!.id}`.execute(t.db)).rejects.toThrow(/append-only/);
      if (kind === 'postgres') await expect(sql`truncate audit_log`.execute(t.db)).rejects.toThrow(/append-only/);
      expect(await verifyAuditChain(t.db)).toEqual({ ok: true, rows: 4 });
    });

    it('with the trigger dropped and a row deleted, verification reports the break at the row after it', async () => {
      const more = [];
      for (let i = 0; i < 5; i++) more.push(await appendAudit(t.db, { actor: 'b@desk.test', action: AUDIT_ACTIONS.caseAssign, targetType: 'user', targetId: `v${i}`, outcome: 'ok' }));
      expect(await verifyAuditChain(t.db)).toEqual({ ok: true, rows: 9 });
      await dropDeleteGuard(t);
      await sql`delete from audit_log where id = ${more[2]!.id}`.execute(t.db);
      const r = await verifyAuditChain(t.db);
      expect(r).toMatchObject({ ok: false, brokenAtId: more[3]!.id, rows: 4 + 2 });
      expect(r.ok ? '' : r.reason).toMatch(/missing/);
    });
  });
}

describe('/audit page, CSV export and verify button', () => {
  let rt: TestRuntime;
  let admin: Browser & { operatorId: string; email: string };
  let compliance: Browser & { operatorId: string; email: string };
  let viewer: Browser & { operatorId: string; email: string };
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
    [admin, compliance, viewer] = await Promise.all([signInAs(rt.db, 'admin'), signInAs(rt.db, 'compliance'), signInAs(rt.db, 'viewer')]);
    await appendAudit(rt.db, { operatorId: compliance.operatorId, actor: compliance.email, action: AUDIT_ACTIONS.linkResend, targetType: 'user', targetId: 'user-1', outcome: 'ok', detail: { reason: '=HYPERLINK("x"), "quoted"' } });
    await appendAudit(rt.db, { operatorId: admin.operatorId, actor: admin.email, action: AUDIT_ACTIONS.operatorRoleChange, targetType: 'operator', targetId: compliance.operatorId, outcome: 'ok', detail: { from: 'viewer', to: 'compliance' } });
  });
  afterAll(async () => { await rt?.close(); });

  it('viewers cannot open it; compliance can, and filters by operator, action, target and date', async () => {
    expect((await call(auditLoader, get('/audit', viewer))).status).toBe(403);
    expect((await call(csvLoader, get('/audit.csv', viewer))).status).toBe(403);
    const all = await call(auditLoader, get('/audit', compliance));
    expect(all.status).toBe(200);
    expect(all.data.actions).toEqual(AUDIT_ACTION_LIST);
    expect(all.data.rows[0].id).toBeGreaterThan(all.data.rows[all.data.rows.length - 1].id); // newest first
    const byOp = await call(auditLoader, get(`/audit?operator=${encodeURIComponent(admin.email.slice(0, 8))}`, compliance));
    expect(byOp.data.rows.length).toBeGreaterThan(0);
    expect(byOp.data.rows.every((r: { actor: string }) => r.actor === admin.email)).toBe(true);
    const byAction = await call(auditLoader, get('/audit?action=link.resend', compliance));
    expect(byAction.data.rows.map((r: { targetId: string }) => r.targetId)).toEqual(['user-1']);
    const byGroup = await call(auditLoader, get('/audit?action=operator.', compliance));
    expect(byGroup.data.rows.map((r: { action: string }) => r.action)).toEqual(['operator.role_change']);
    const byTarget = await call(auditLoader, get(`/audit?target=operator:${compliance.operatorId}`, compliance));
    expect(byTarget.data.rows.map((r: { action: string }) => r.action)).toEqual(['operator.role_change']);
    const today = new Date().toISOString().slice(0, 10);
    expect((await call(auditLoader, get(`/audit?action=link.resend&from=${today}&to=${today}`, compliance))).data.total).toBe(1);
    expect((await call(auditLoader, get('/audit?action=link.resend&to=2020-01-01', compliance))).data.total).toBe(0);
    const bad = await call(auditLoader, get('/audit?from=2026-13-45', compliance));
    expect(bad.status).toBe(200);
    expect(bad.data.problems[0]).toMatch(/not a date/);
  });

  it('exports the filtered log as CSV (escaped, formula-safe) and audits the export', async () => {
    const r = await csvLoader({ request: get('/audit.csv?action=link.resend', compliance), params: {}, context: {} });
    expect(r.headers.get('content-type')).toMatch(/text\/csv/);
    expect(r.headers.get('content-disposition')).toMatch(/attachment; filename="kyc-desk-audit-/);
    const text = await r.text();
    const lines = text.trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,at,actor,operator_id,action,target_type,target_id,outcome,detail,ip,prev_hash,hash');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(',link.resend,user,user-1,ok,');
    expect(lines[1]).toContain(csvField('{"reason":"=HYPERLINK(\\"x\\"), \\"quoted\\""}'));
    expect(csvField('=1+1')).toBe("'=1+1");
    expect(csvField('a,"b"')).toBe('"a,""b"""');
    const exported = await rt.db.selectFrom('auditLog').selectAll().where('action', '=', 'audit.export').execute();
    expect(exported.map((e) => e.actor)).toEqual([compliance.email]);
  });

  it('verify chain: admin only; reports intact, then the broken id after tampering', async () => {
    const denied = await call(auditAction, post('/audit', compliance, {}));
    expect(denied.status).toBe(403);
    const ok = await call(auditAction, post('/audit', admin, {}));
    expect(ok.status).toBe(200);
    expect(ok.data).toMatchObject({ ok: true });
    expect(ok.data.rows).toBeGreaterThan(3);
    const victim = await rt.db.selectFrom('auditLog').select('id').where('action', '=', 'link.resend').executeTakeFirstOrThrow();
    const successor = await rt.db.selectFrom('auditLog').select('id').where('id', '>', victim.id).orderBy('id', 'asc').executeTakeFirstOrThrow();
    await sql`drop trigger audit_log_no_delete`.execute(rt.db);
    await sql`delete from audit_log where id = ${victim.id}`.execute(rt.db);
    const broken = await call(auditAction, post('/audit', admin, {}));
    expect(broken.data).toMatchObject({ ok: false, brokenAtId: successor.id });
    const logged = await rt.db.selectFrom('auditLog').selectAll().where('action', '=', 'audit.verify').orderBy('id', 'asc').execute();
    expect(logged.map((l) => l.outcome)).toEqual(['ok', 'error']);
  });
});
