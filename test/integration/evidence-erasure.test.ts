import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit, verifyAuditChain } from '../../db/repositories/audit.js';
import { insertNote, insertTask } from '../../db/repositories/cases.js';
import { insertDetailsSnapshot } from '../../db/repositories/details.js';
import { insertLink } from '../../db/repositories/links.js';
import { insertMessage } from '../../db/repositories/notifications.js';
import { findUserById, insertUser } from '../../db/repositories/users.js';
import { createCapaUser } from '../../jobs/definitions/create-capa-user.js';
import { setServices } from '../../app/services.server';
import { action as erasureAction, loader as erasureLoader } from '../../app/routes/users.$id_.erasure';
import { createTestRuntime, redisUrl, waitFor, type TestRuntime } from '../support/runtime.js';
import { call, get, post, signInAs, type Browser } from './console-helpers.js';

/**
 * Erasure on request: afterwards no seeded marker of the customer is anywhere in the database (every
 * table, every column), in Redis (job payloads, results, events) or in what the web side logged,
 * while the audit chain still verifies; a legal hold blocks erasure; the report says what went.
 */
let rt: TestRuntime;
let admin: Browser & { operatorId: string };
let compliance: Browser & { operatorId: string; email: string };
const logged: string[] = [];
const MARK = {
  email: 'zz.erase.marker@example.mx',
  ext: 'ERASE-MARKER-0001',
  alias: 'Marcadora Borrable',
  idNumber: 'IDMARK99887766',
  note: 'NOTEMARKER called Marcadora',
  link: 'https://kyc.example/LINKMARKER',
};
let userId: string;

async function scanDb(): Promise<string[]> {
  const found: string[] = [];
  const tables = await sql<{
    name: string;
  }>`select name from sqlite_master where type = 'table' and name not like 'users_search%' and name not like 'sqlite_%'`.execute(rt.db);
  for (const { name } of tables.rows) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(rt.db);
    const text = JSON.stringify(rows.rows);
    for (const m of Object.values(MARK)) if (text.includes(m)) found.push(`${name}: ${m}`);
  }
  // The full-text index answers from its own copy: a search for the marker must find nothing.
  const fts = await sql<{ n: number }>`select count(*) as n from users_search where users_search match ${'"marker@example"'}`.execute(
    rt.db,
  );
  if (Number(fts.rows[0]?.n) > 0) found.push('users_search');
  return found;
}

async function scanRedis(): Promise<string[]> {
  const r = new Redis(redisUrl());
  const found: string[] = [];
  try {
    const keys = await r.keys(`${rt.env.QUEUE_PREFIX}:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      const type = await r.type(k);
      const dump =
        type === 'hash'
          ? JSON.stringify(await r.hgetall(k))
          : type === 'list'
            ? JSON.stringify(await r.lrange(k, 0, -1))
            : type === 'zset'
              ? JSON.stringify(await r.zrange(k, 0, -1))
              : type === 'stream'
                ? JSON.stringify(await r.xrange(k, '-', '+'))
                : type === 'string'
                  ? String(await r.get(k))
                  : type === 'set'
                    ? JSON.stringify(await r.smembers(k))
                    : '';
      for (const m of Object.values(MARK)) if (dump.includes(m)) found.push(`${k}: ${m}`);
    }
  } finally {
    r.disconnect();
  }
  return found;
}

beforeAll(async () => {
  rt = await createTestRuntime({ worker: true });
  // What the web side logs, at debug level, kept to be scanned.
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logged.push(String(chunk));
      cb();
    },
  });
  setServices({ ...rt.services, logger: pino({ level: 'debug' }, sink) });
  admin = await signInAs(rt.db, 'admin');
  compliance = await signInAs(rt.db, 'compliance');
  const u = await insertUser(rt.db, { email: MARK.email, externalUserId: MARK.ext, alias: MARK.alias, type: 'INDIVIDUAL', country: 'MX' });
  userId = u.id;
  // A real job through Redis and the sandbox: Capa creates the user from our row.
  await rt.queues.add(createCapaUser, { userId, requestedBy: admin.operatorId });
  await waitFor(async () => (await findUserById(rt.db, userId))?.capaUserId ?? null, { what: 'Capa user created', timeoutMs: 15_000 });
  await insertDetailsSnapshot(
    rt.db,
    {
      userId,
      details: { idInfo: { fullName: MARK.alias, idNumber: MARK.idNumber } },
      verificationResult: 'REJECTED',
      mappedState: 'REJECTED',
      cause: 'test',
    },
    rt.services.dataKeys,
  );
  await rt.db
    .transaction()
    .execute((trx) => insertLink(trx, { userId, url: MARK.link, country: 'MX', redirectUri: null, createdBy: null }));
  await insertMessage(rt.db, {
    userId,
    kind: 'kyc_link',
    channel: 'email',
    locale: 'es',
    address: MARK.email,
    dedupeKey: 'erase-1',
    linkUrl: MARK.link,
  });
  await insertNote(rt.db, userId, { id: compliance.operatorId, label: compliance.email }, MARK.note);
  await insertTask(
    rt.db,
    userId,
    { id: compliance.operatorId, label: compliance.email },
    { title: `call ${MARK.alias}`, dueOn: '2030-01-01' },
  );
  await appendAudit(rt.db, {
    operatorId: compliance.operatorId,
    actor: compliance.email,
    ip: null,
    action: 'case.note',
    targetType: 'user',
    targetId: userId,
    outcome: 'ok',
    detail: null,
  });
  expect((await scanDb()).length).toBeGreaterThan(3);
}, 60_000);

afterAll(async () => {
  setServices(undefined);
  await rt?.close();
});

const act = (b: Browser, fields: Record<string, string>) =>
  call(erasureAction, post(`/users/${userId}/erasure`, b, fields), { id: userId });

describe('erasure', () => {
  it('is for admins only', async () => {
    expect((await call(erasureLoader, get(`/users/${userId}/erasure`, compliance), { id: userId })).status).toBe(403);
    expect((await act(compliance, { intent: 'erase', reason: 'ARCO request', confirm: 'yes' })).status).toBe(403);
  });

  it('a legal hold blocks erasure; a reason and a confirmation are required', async () => {
    expect((await act(admin, { intent: 'hold', reason: '' })).data).toMatchObject({
      tone: 'error',
      code: 'evidence:erasure.reason_missing',
    });
    expect((await act(admin, { intent: 'hold', reason: 'CNBV inquiry 12' })).data).toMatchObject({
      tone: 'ok',
      code: 'evidence:erasure.held',
    });
    expect((await act(admin, { intent: 'erase', reason: 'ARCO request' })).data.code).toBe('evidence:erasure.confirm_missing');
    expect((await act(admin, { intent: 'erase', reason: 'ARCO request', confirm: 'yes' })).data).toMatchObject({
      tone: 'error',
      code: 'evidence:erasure.refused_held',
    });
    expect((await scanDb()).length).toBeGreaterThan(3);
    const denied = await rt.db.selectFrom('auditLog').select(['outcome', 'detail']).where('action', '=', 'evidence.erasure').execute();
    expect(denied).toHaveLength(1);
    expect(denied[0]!.outcome).toBe('denied');
  });

  it('erases every marker from the database, Redis and the logs; the chain verifies; the report says what went', async () => {
    expect((await act(admin, { intent: 'release' })).data.code).toBe('evidence:erasure.released');
    const r = await act(admin, { intent: 'erase', reason: 'ARCO request from the customer', confirm: 'yes' });
    expect(r.data).toMatchObject({ tone: 'ok', code: 'evidence:erasure.erased' });
    expect(await scanDb()).toEqual([]);
    expect(await scanRedis()).toEqual([]);
    const logs = logged.join('');
    for (const m of Object.values(MARK)) expect(logs).not.toContain(m);
    expect(await verifyAuditChain(rt.db)).toMatchObject({ ok: true });
    const page = await call(erasureLoader, get(`/users/${userId}/erasure`, admin), { id: userId });
    expect(page.data.user.erasedAt).toBeTruthy();
    expect(page.data.erasures).toHaveLength(1);
    expect(page.data.erasures[0].report).toMatchObject({
      users: 1,
      kyc_details: 1,
      kyc_links: 1,
      notifications: 1,
      case_notes: 1,
      case_tasks: 1,
    });
    // The tombstone keeps the state history and the case.
    expect(await rt.db.selectFrom('users').select('kycState').where('id', '=', userId).executeTakeFirst()).toBeTruthy();
    const again = await act(admin, { intent: 'erase', reason: 'again', confirm: 'yes' });
    expect(again.data.code).toBe('evidence:erasure.refused_already_erased');
  });
});
