import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { CLIENT_ADDRESS_HEADER } from '../../lib/client-address.js';
import { parseEnv } from '../../lib/config.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { startBuiltApp } from '../support/web.js';

/**
 * The audit log's client address over real HTTP through server/web.ts: a client cannot choose
 * the address recorded for its sign-in attempts, neither through X-Forwarded-For nor through the
 * internal header the server uses to pass the address on.
 */
let rt: TestRuntime;
let server: Server;
let base: string;
let strict: Server;
let strictBase: string;

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  ({ server, base } = await startBuiltApp());
  // A deployment whose load balancers live in 10.0.0.0/8: a loopback peer is not one of them.
  ({ server: strict, base: strictBase } = await startBuiltApp({
    trustProxy: parseEnv({ NODE_ENV: 'test', TRUST_PROXY: '10.0.0.0/8' }).TRUST_PROXY,
  }));
  await createOperator(rt.db, { email: 'ines@desk.test', name: 'Ines', role: 'viewer', password: 'the right password 1' });
}, 120_000);

afterAll(async () => {
  await new Promise((r) => (server ? server.close(r) : r(null)));
  await new Promise((r) => (strict ? strict.close(r) : r(null)));
  await rt?.close();
});

async function failedSignInRecordsIp(headers: Record<string, string>, at = base): Promise<string | null> {
  const before = await rt.db.selectFrom('auditLog').select('id').orderBy('id', 'desc').limit(1).executeTakeFirst();
  const res = await fetch(`${at}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: at, ...headers },
    body: new URLSearchParams({ email: 'ines@desk.test', password: 'a wrong password' }).toString(),
  });
  expect(res.status).toBeLessThan(500);
  const rows = await rt.db
    .selectFrom('auditLog')
    .select(['ip', 'outcome'])
    .where('action', '=', 'auth.login')
    .where('id', '>', before?.id ?? 0)
    .execute();
  expect(rows).toHaveLength(1);
  expect(rows[0]!.outcome).toBe('denied');
  return rows[0]!.ip;
}

describe('client address in the audit log', () => {
  it('a direct client is recorded by its socket address', async () => {
    expect(await failedSignInRecordsIp({})).toBe('127.0.0.1');
  });

  it('through a proxy, the address the proxy saw is recorded, not the one the client claimed', async () => {
    // The client wrote 198.51.100.7; the (loopback) proxy appended the address it saw, 203.0.113.9.
    expect(await failedSignInRecordsIp({ 'x-forwarded-for': '198.51.100.7, 203.0.113.9' })).toBe('203.0.113.9');
  });

  it('the internal header cannot be forged by the client', async () => {
    expect(await failedSignInRecordsIp({ [CLIENT_ADDRESS_HEADER]: '192.0.2.66' })).toBe('127.0.0.1');
  });

  it('X-Forwarded-For from a peer that is not a configured proxy is ignored (TRUST_PROXY)', async () => {
    expect(await failedSignInRecordsIp({ 'x-forwarded-for': '203.0.113.9' }, strictBase)).toBe('127.0.0.1');
  });

  it('TRUST_PROXY refuses "trust everyone" and reads a hop count as a number', () => {
    expect(() => parseEnv({ NODE_ENV: 'test', TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY/);
    expect(parseEnv({ NODE_ENV: 'test', TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2);
    expect(parseEnv({ NODE_ENV: 'test' }).TRUST_PROXY).toBe('loopback');
  });
});
