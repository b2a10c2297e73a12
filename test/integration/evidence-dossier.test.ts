import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { appendAudit } from '../../db/repositories/audit.js';
import { insertNote } from '../../db/repositories/cases.js';
import { insertDetailsSnapshot } from '../../db/repositories/details.js';
import { insertLink } from '../../db/repositories/links.js';
import { insertMessage } from '../../db/repositories/notifications.js';
import { insertUser } from '../../db/repositories/users.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { setServices } from '../../app/services.server';
import { loader as pdfLoader } from '../../app/routes/users.$id.dossier[.]pdf';
import { loader as zipLoader } from '../../app/routes/users.$id.dossier[.]zip';
import { createTestDb, redisUrl, type TestDb } from '../support/runtime.js';
import { get, ORIGIN, signInAs, type Browser } from './console-helpers.js';

/** The customer dossier: a PDF that opens (poppler's pdftotext reads it) with the whole file, a ZIP of raw JSON, roles, audit. */
let t: TestDb;
let queues: Queues;
let compliance: Browser & { operatorId: string; email: string };
let viewer: Browser & { operatorId: string };
let userId: string;
const dir = mkdtempSync(join(tmpdir(), 'dossier-'));

beforeAll(async () => {
  t = await createTestDb();
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: 'tdoss',
    PUBLIC_URL: ORIGIN,
    LOG_LEVEL: 'silent',
  });
  const dataKeys = parseDataKeys('b'.repeat(64));
  queues = new Queues({ redis: env.redis, prefix: 'tdoss' });
  setServices({ env, db: t.db, queues, dataKeys, logger });
  compliance = await signInAs(t.db, 'compliance');
  viewer = await signInAs(t.db, 'viewer');
  const u = await insertUser(t.db, {
    email: 'dossier.person@example.mx',
    externalUserId: 'DOSS-0042',
    alias: 'Rosa Dossier',
    type: 'INDIVIDUAL',
    country: 'MX',
  });
  userId = u.id;
  for (const [at, result] of [
    ['first', 'REJECTED'],
    ['second', 'APPROVED'],
  ] as const) {
    await insertDetailsSnapshot(
      t.db,
      {
        userId,
        details: {
          verificationSessionId: `sess-${at}`,
          aipriseSummary: { verificationResult: result },
          idInfo: { fullName: 'ROSA MARKER DOSSIER', idNumber: `IDNUM-${at}`, status: 'DONE', result },
        },
        verificationResult: result,
        mappedState: result === 'APPROVED' ? 'VERIFIED' : 'REJECTED',
        cause: 'test',
      },
      dataKeys,
    );
  }
  await t.db
    .transaction()
    .execute((trx) =>
      insertLink(trx, { userId, url: 'https://kyc.example/link-marker-77', country: 'MX', redirectUri: null, createdBy: null }),
    );
  await insertMessage(t.db, {
    userId,
    kind: 'kyc_link',
    channel: 'email',
    locale: 'es',
    address: 'dossier.person@example.mx',
    dedupeKey: 'd1',
  });
  await insertNote(t.db, userId, { id: compliance.operatorId, label: compliance.email }, 'Note marker: called the customer');
  await appendAudit(t.db, {
    operatorId: compliance.operatorId,
    actor: compliance.email,
    ip: null,
    action: 'link.generate',
    targetType: 'user',
    targetId: userId,
    outcome: 'ok',
    detail: null,
  });
});

afterAll(async () => {
  setServices(undefined);
  await queues?.close();
  await t?.close();
});

async function fetchBytes(
  fn: (a: any) => any,
  path: string,
  b: Browser,
  id = userId,
): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  try {
    const res: Response = await fn({ request: get(path, b), params: { id }, context: {} });
    return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') };
  } catch (err) {
    if (err instanceof Response) return { status: err.status, bytes: Buffer.alloc(0), type: null };
    throw err;
  }
}

describe('customer dossier', () => {
  it('is a PDF that opens and holds identity, every KYC result, links, messages, notes, timeline and audit with hashes', async () => {
    const got = await fetchBytes(pdfLoader, `/users/${userId}/dossier.pdf`, compliance);
    expect(got.status).toBe(200);
    expect(got.type).toBe('application/pdf');
    expect(got.bytes.subarray(0, 5).toString()).toBe('%PDF-');
    const file = join(dir, 'd.pdf');
    writeFileSync(file, got.bytes);
    const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
    for (const s of [
      'Customer dossier DOSS-0042',
      'dossier.person@example.mx',
      'ROSA MARKER DOSSIER',
      'IDNUM-first',
      'IDNUM-second',
      'https://kyc.example/link-marker-77',
      'kyc_link',
      'Note marker: called the customer',
      'Timeline',
      'link.generate',
      'verified,',
    ])
      expect(text).toContain(s);
    const audit = await t.db
      .selectFrom('auditLog')
      .select(['hash'])
      .where('targetId', '=', userId)
      .where('action', '=', 'link.generate')
      .executeTakeFirstOrThrow();
    expect(text.replace(/\s+/g, '')).toContain(audit.hash);
  });

  it('is audited: who took the file, in which format', async () => {
    await fetchBytes(zipLoader, `/users/${userId}/dossier.zip`, compliance);
    const rows = await t.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'evidence.dossier')
      .where('targetId', '=', userId)
      .orderBy('id')
      .execute();
    expect(rows.map((r) => JSON.parse(String(r.detail)).format)).toEqual(['pdf', 'zip']);
    expect(rows.every((r) => r.operatorId === compliance.operatorId)).toBe(true);
  });

  it('the ZIP holds the raw JSON', async () => {
    const got = await fetchBytes(zipLoader, `/users/${userId}/dossier.zip`, compliance);
    expect(got.status).toBe(200);
    const file = join(dir, 'd.zip');
    writeFileSync(file, got.bytes);
    const results = JSON.parse(execFileSync('unzip', ['-p', file, 'kyc-results.json'], { encoding: 'utf8' }));
    expect(results.map((r: { details: { idInfo: { idNumber: string } } }) => r.details.idInfo.idNumber)).toEqual([
      'IDNUM-first',
      'IDNUM-second',
    ]);
    const audit = JSON.parse(execFileSync('unzip', ['-p', file, 'audit.json'], { encoding: 'utf8' }));
    expect(audit.chain.ok).toBe(true);
    expect(audit.entries.some((e: { action: string }) => e.action === 'link.generate')).toBe(true);
  });

  it('refuses viewers and answers 404 for an unknown customer', async () => {
    for (const fn of [pdfLoader, zipLoader]) {
      const v = await fetchBytes(fn, `/users/${userId}/dossier.pdf`, viewer);
      expect(v.status).toBe(403);
      expect(v.bytes.toString()).not.toContain('ROSA');
    }
    expect((await fetchBytes(pdfLoader, '/users/nope/dossier.pdf', compliance, 'nope')).status).toBe(404);
  });
});
