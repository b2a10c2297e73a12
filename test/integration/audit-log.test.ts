import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pino from 'pino';
import { getFixedT } from '../../app/i18n.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { action as auditAction, loader as auditLoader } from '../../app/routes/audit._index';
import { loader as csvLoader } from '../../app/routes/audit[.]csv';
import { AUDIT_ACTION_LIST, AUDIT_ACTIONS } from '../../db/repositories/audit-actions.js';
import { csvField } from '../../lib/csv.js';
import {
  appendAudit,
  auditChainHead,
  auditHash,
  checkAuditAnchor,
  GENESIS,
  listAuditAnchors,
  recordAuditAnchor,
  verifyAuditChain,
} from '../../db/repositories/audit.js';
import type { Db } from '../../db/client.js';
import { AUDIT_ANCHOR_EVERY_MS } from '../../jobs/definitions/audit-anchor.js';
import { startWorkers, type RunningWorkers } from '../../jobs/worker.js';
import { isPostgres } from '../../db/migration-helpers.js';
import { createTestDb, createTestRuntime, postgresAvailable, waitFor, type TestDb, type TestRuntime } from '../support/runtime.js';
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
    beforeAll(async () => {
      t = await createTestDb(kind);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('refuses a targeted UPDATE of one row, a DELETE of the newest row, and (PostgreSQL) TRUNCATE', async () => {
      const rows = [];
      for (let i = 0; i < 4; i++)
        rows.push(
          await appendAudit(t.db, {
            actor: 'a@desk.test',
            action: AUDIT_ACTIONS.caseNote,
            targetType: 'user',
            targetId: `u${i}`,
            outcome: 'ok',
          }),
        );
      await expect(sql`update audit_log set outcome = 'denied' where id = ${rows[1]!.id}`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`update audit_log set hash = ${'0'.repeat(64)} where id = ${rows[3]!.id}`.execute(t.db)).rejects.toThrow(
        /append-only/,
      );
      await expect(sql`delete from audit_log where id = ${rows[3]!.id}`.execute(t.db)).rejects.toThrow(/append-only/);
      if (kind === 'postgres') await expect(sql`truncate audit_log`.execute(t.db)).rejects.toThrow(/append-only/);
      expect(await verifyAuditChain(t.db)).toEqual({ ok: true, rows: 4 });
    });

    it('with the trigger dropped and a row deleted, verification reports the break at the row after it', async () => {
      const more = [];
      for (let i = 0; i < 5; i++)
        more.push(
          await appendAudit(t.db, {
            actor: 'b@desk.test',
            action: AUDIT_ACTIONS.caseAssign,
            targetType: 'user',
            targetId: `v${i}`,
            outcome: 'ok',
          }),
        );
      expect(await verifyAuditChain(t.db)).toEqual({ ok: true, rows: 9 });
      await dropDeleteGuard(t);
      await sql`delete from audit_log where id = ${more[2]!.id}`.execute(t.db);
      const r = await verifyAuditChain(t.db);
      expect(r).toMatchObject({ ok: false, brokenAtId: more[3]!.id, rows: 4 + 2 });
      expect(r.ok ? '' : r.reason).toMatch(/missing/);
    });
  });
}

/** What someone with write access does to hide an edit: rewrite one row, recompute every later hash. */
async function rewriteAndRecompute(db: Db, victimId: number) {
  if (isPostgres(db)) await sql`alter table audit_log disable trigger user`.execute(db);
  else await sql`drop trigger audit_log_no_update`.execute(db);
  let prev = GENESIS;
  for (const r of await db.selectFrom('auditLog').selectAll().orderBy('id', 'asc').execute()) {
    const { id, hash: _old, ...rest } = r;
    const row = { ...rest, prevHash: prev, detail: id === victimId ? JSON.stringify({ reason: 'nothing to see' }) : rest.detail };
    const hash = auditHash(row);
    await db.updateTable('auditLog').set({ prevHash: row.prevHash, detail: row.detail, hash }).where('id', '=', id).execute();
    prev = hash;
  }
}

for (const kind of kinds) {
  describe(`audit rows cannot be replaced, and anchors, on ${kind}`, () => {
    let t: TestDb;
    beforeAll(async () => {
      t = await createTestDb(kind);
    });
    afterAll(async () => {
      await t?.close();
    });
    const append = (i: number) =>
      appendAudit(t.db, {
        actor: 'c@desk.test',
        action: AUDIT_ACTIONS.caseNote,
        targetType: 'user',
        targetId: `w${i}`,
        outcome: 'ok',
        detail: { note: `n${i}` },
      });

    it('refuses INSERT OR REPLACE / REPLACE INTO (SQLite) and INSERT … ON CONFLICT DO UPDATE over an existing row; the row stays as it was', async () => {
      const rows = [];
      for (let i = 0; i < 3; i++) rows.push(await append(i));
      const victim = rows[1]!;
      const before = await t.db.selectFrom('auditLog').selectAll().where('id', '=', victim.id).executeTakeFirstOrThrow();
      const forged = { ...before, outcome: 'denied' as const, detail: null };
      const values = sql`(${forged.id}, ${forged.at}, ${forged.operatorId}, ${forged.actor}, ${forged.action}, ${forged.targetType}, ${forged.targetId}, ${forged.outcome}, ${forged.detail}, ${forged.ip}, ${forged.prevHash}, ${auditHash(forged)})`;
      const cols = sql.raw('(id, at, operator_id, actor, action, target_type, target_id, outcome, detail, ip, prev_hash, hash)');
      const attempts = [
        sql`insert into audit_log ${cols} values ${values} on conflict (id) do update set outcome = 'denied', detail = null`,
        sql`insert into audit_log ${cols} values ${values} on conflict (prev_hash) do update set outcome = 'denied', detail = null`,
      ];
      if (kind === 'sqlite') {
        attempts.push(sql`insert or replace into audit_log ${cols} values ${values}`);
        attempts.push(sql`replace into audit_log ${cols} values ${values}`);
        // A new id over an existing row's prev_hash: REPLACE would silently delete that row.
        const freshId = sql`(${9_999}, ${forged.at}, ${forged.operatorId}, ${forged.actor}, ${forged.action}, ${forged.targetType}, ${forged.targetId}, ${forged.outcome}, ${forged.detail}, ${forged.ip}, ${forged.prevHash}, ${auditHash(forged)})`;
        attempts.push(sql`insert or replace into audit_log ${cols} values ${freshId}`);
      }
      for (const q of attempts) await expect(q.execute(t.db)).rejects.toThrow(/append-only/);
      expect(await t.db.selectFrom('auditLog').selectAll().where('id', '=', victim.id).executeTakeFirstOrThrow()).toEqual(before);
      expect(await verifyAuditChain(t.db)).toEqual({ ok: true, rows: 3 });
      // Appending still works after the refusals (and on SQLite, through the new trigger).
      await append(3);
      expect(await verifyAuditChain(t.db)).toEqual({ ok: true, rows: 4 });
    });

    it('an anchor stays valid while the log grows, and detects a rewritten, recomputed chain that verifies', async () => {
      const empty = await checkAuditAnchor(t.db, { head: GENESIS, count: 0 });
      expect(empty.code).toBe('match');
      const anchor = await recordAuditAnchor(t.db);
      expect(anchor).toMatchObject({ rowCount: 4, headHash: (await auditChainHead(t.db)).head });
      expect((await listAuditAnchors(t.db)).map((a) => a.id)).toEqual([anchor.id]);
      const saved = { head: anchor.headHash, count: anchor.rowCount };
      for (let i = 4; i < 7; i++) await append(i);
      expect(await checkAuditAnchor(t.db, saved)).toEqual({ code: 'match', count: 4, head: saved.head });
      // The saved head is the 4th entry's hash, not any later one.
      expect((await checkAuditAnchor(t.db, { ...saved, count: 5 })).code).toBe('different');
      expect(await checkAuditAnchor(t.db, { ...saved, count: 50 })).toEqual({ code: 'short', count: 50, rows: 7 });

      const second = await t.db.selectFrom('auditLog').select('id').orderBy('id', 'asc').offset(1).limit(1).executeTakeFirstOrThrow();
      await rewriteAndRecompute(t.db, second.id);
      // Verification alone is fooled: every link and hash checks out again...
      expect(await verifyAuditChain(t.db)).toEqual({ ok: true, rows: 7 });
      // ...but the anchor kept outside the database no longer matches.
      const r = await checkAuditAnchor(t.db, saved);
      expect(r).toMatchObject({ code: 'different', count: 4, head: saved.head });
      expect(r.code === 'different' && r.found).not.toBe(saved.head);
    });
  });
}

describe('the audit-anchor schedule', () => {
  let rt: TestRuntime;
  const running: RunningWorkers[] = [];
  let dir: string;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
    dir = mkdtempSync(path.join(os.tmpdir(), 'kyc-anchor-log-'));
  });
  afterAll(async () => {
    for (const w of running) await w.close(5000);
    await rt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one schedule; each run writes the head and count to the log stream and to audit_anchors', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 3; i++)
      await appendAudit(rt.db, {
        actor: 'd@desk.test',
        action: AUDIT_ACTIONS.caseNote,
        targetType: 'user',
        targetId: `x${i}`,
        outcome: 'ok',
      });
    const file = path.join(dir, 'worker.log');
    const log = pino({ level: 'info' }, pino.destination({ dest: file, sync: true }));
    const deps = {
      env: rt.env,
      db: rt.db,
      capa: rt.capa,
      logger: log,
      dataKeys: rt.services.dataKeys,
      redis: rt.env.redis,
      prefix: rt.queues.prefix,
    };
    // Two workers (as two processes would) upsert the same schedule: still one.
    running.push(await startWorkers(deps, { queues: ['maintenance'] }));
    running.push(await startWorkers(deps, { queues: ['maintenance'] }));
    const schedulers = (await rt.queues.queue('maintenance').getJobSchedulers()).filter(
      (s) => s.key === 'audit-anchor' || s.id === 'audit-anchor',
    );
    expect(schedulers).toHaveLength(1);
    expect(schedulers[0]?.every).toBe(AUDIT_ANCHOR_EVERY_MS);

    // BullMQ runs an `every` schedule's first job at once; the handler writes the row, then the line.
    const anchorLines = () =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === 'audit chain anchor');
    const logged = await waitFor(
      () => {
        const l = anchorLines();
        return l.length ? l : null;
      },
      { what: 'the anchor log line' },
    );
    expect(logged[0]).toMatchObject({
      level: 30,
      job: 'audit-anchor',
      head: (await auditChainHead(rt.db)).head,
      count: 3,
      at: expect.any(String),
    });
    const rows = await listAuditAnchors(rt.db);
    expect(rows.find((a) => a.at === logged[0]!.at)).toMatchObject({ rowCount: 3, headHash: logged[0]!.head });
    // What the log line says is what an auditor pastes into /audit later.
    expect((await checkAuditAnchor(rt.db, { head: String(logged[0]!.head), count: Number(logged[0]!.count) })).code).toBe('match');
  });
});

describe('/audit page, CSV export and verify button', () => {
  let rt: TestRuntime;
  let admin: Browser & { operatorId: string; email: string };
  let compliance: Browser & { operatorId: string; email: string };
  let viewer: Browser & { operatorId: string; email: string };
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
    [admin, compliance, viewer] = await Promise.all([signInAs(rt.db, 'admin'), signInAs(rt.db, 'compliance'), signInAs(rt.db, 'viewer')]);
    await appendAudit(rt.db, {
      operatorId: compliance.operatorId,
      actor: compliance.email,
      action: AUDIT_ACTIONS.linkResend,
      targetType: 'user',
      targetId: 'user-1',
      outcome: 'ok',
      detail: { reason: '=HYPERLINK("x"), "quoted"' },
    });
    await appendAudit(rt.db, {
      operatorId: admin.operatorId,
      actor: admin.email,
      action: AUDIT_ACTIONS.operatorRoleChange,
      targetType: 'operator',
      targetId: compliance.operatorId,
      outcome: 'ok',
      detail: { from: 'viewer', to: 'compliance' },
    });
  });
  afterAll(async () => {
    await rt?.close();
  });

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
    expect(bad.data.problems[0]).toEqual({ code: 'audit:problems.from_not_a_date', values: { value: '2026-13-45' } });
    expect(getFixedT('en')(bad.data.problems[0].code, bad.data.problems[0].values)).toMatch(/not a date/);
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
    // Column names in the reader's language (here the browser's); the rows keep the recorded codes.
    const es = await csvLoader({
      request: get('/audit.csv?action=link.resend', compliance, { 'accept-language': 'es-MX,es;q=0.9' }),
      params: {},
      context: {},
    });
    const esLines = (await es.text()).trimEnd().split('\r\n');
    expect(esLines[0]).toBe('id,fecha,actor,id_operador,accion,tipo_objetivo,id_objetivo,resultado,detalle,ip,hash_anterior,hash');
    expect(esLines[1]).toContain(',link.resend,user,user-1,ok,');
    const exported = await rt.db.selectFrom('auditLog').selectAll().where('action', '=', 'audit.export').execute();
    expect(exported.map((e) => e.actor)).toEqual([compliance.email, compliance.email]);
  });

  it('shows the chain head, the last anchor, and compares a saved anchor (compliance+, audited)', async () => {
    const none = await call(auditLoader, get('/audit', compliance));
    expect(none.data.anchors).toEqual([]);
    const anchor = await recordAuditAnchor(rt.db);
    const page = await call(auditLoader, get('/audit', compliance));
    expect(page.data.chain).toEqual(await auditChainHead(rt.db));
    expect(page.data.anchors).toEqual([{ id: anchor.id, at: anchor.at, count: anchor.rowCount, head: anchor.headHash }]);

    const compare = (b: Browser, head: string, count: string) => call(auditAction, post('/audit', b, { intent: 'compare', head, count }));
    expect((await compare(viewer, anchor.headHash, String(anchor.rowCount))).status).toBe(403);
    const ok = await compare(compliance, ` ${anchor.headHash.toUpperCase()} `, String(anchor.rowCount));
    expect(ok.status).toBe(200);
    expect(ok.data).toMatchObject({ kind: 'compare', code: 'match', count: anchor.rowCount });
    expect((await compare(compliance, anchor.headHash, String(anchor.rowCount - 1))).data).toMatchObject({ code: 'different' });
    expect((await compare(compliance, anchor.headHash, '999999')).data).toMatchObject({ code: 'short' });
    for (const [head, count] of [
      ['not-a-hash', '3'],
      [anchor.headHash, '-1'],
      [anchor.headHash, ''],
      [anchor.headHash, '1e3'],
    ]) {
      expect((await compare(compliance, head!, count!)).data).toMatchObject({ kind: 'compare', code: 'invalid' });
    }
    const logged = await rt.db
      .selectFrom('auditLog')
      .select(['actor', 'outcome'])
      .where('action', '=', AUDIT_ACTIONS.auditAnchorCompare)
      .orderBy('id', 'asc')
      .execute();
    expect(logged).toEqual([
      { actor: compliance.email, outcome: 'ok' },
      { actor: compliance.email, outcome: 'error' },
      { actor: compliance.email, outcome: 'error' },
    ]);
  });

  it('verify chain: admin only; reports intact, then the broken id after tampering', async () => {
    const denied = await call(auditAction, post('/audit', compliance, {}));
    expect(denied.status).toBe(403);
    const ok = await call(auditAction, post('/audit', admin, {}));
    expect(ok.status).toBe(200);
    expect(ok.data).toMatchObject({ ok: true });
    expect(ok.data.rows).toBeGreaterThan(3);
    const victim = await rt.db.selectFrom('auditLog').select('id').where('action', '=', 'link.resend').executeTakeFirstOrThrow();
    const successor = await rt.db
      .selectFrom('auditLog')
      .select('id')
      .where('id', '>', victim.id)
      .orderBy('id', 'asc')
      .executeTakeFirstOrThrow();
    await sql`drop trigger audit_log_no_delete`.execute(rt.db);
    await sql`delete from audit_log where id = ${victim.id}`.execute(rt.db);
    const broken = await call(auditAction, post('/audit', admin, {}));
    expect(broken.data).toMatchObject({ ok: false, brokenAtId: successor.id, reasonCode: 'missing_row' });
    const logged = await rt.db.selectFrom('auditLog').selectAll().where('action', '=', 'audit.verify').orderBy('id', 'asc').execute();
    expect(logged.map((l) => l.outcome)).toEqual(['ok', 'error']);
  });
});
