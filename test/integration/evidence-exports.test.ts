import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { insertMessage } from '../../db/repositories/notifications.js';
import { insertUser } from '../../db/repositories/users.js';
import type { KycState } from '../../db/schema.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { setServices } from '../../app/services.server';
import { loader as usersLoader } from '../../app/routes/users._index';
import { loader as usersExport } from '../../app/routes/users.export[.]csv';
import { loader as reviewLoader } from '../../app/routes/review._index';
import { loader as reviewExport } from '../../app/routes/review.export[.]csv';
import { loader as messagesLoader } from '../../app/routes/notifications._index';
import { loader as messagesExport } from '../../app/routes/notifications.export[.]csv';
import { createTestDb, postgresAvailable, redisUrl, type TestDb } from '../support/runtime.js';
import { call, get, ORIGIN, signInAs, type Browser } from './console-helpers.js';

/**
 * List exports: the CSV holds exactly the rows the filtered list shows over all its pages, in the
 * list's order, with formula-looking cells neutralised, a BOM, headers in the reader's language,
 * an audit row per export, and nothing for viewers.
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

const STATES: KycState[] = ['NOT_STARTED', 'LINK_ISSUED', 'IN_PROGRESS', 'VERIFIED', 'REJECTED', 'REVIEW_NEEDED'];

async function download(fn: (a: any) => any, path: string, b: Browser, headers: Record<string, string> = {}) {
  let res: Response;
  try {
    res = await fn({ request: get(path, b, headers), params: {}, context: {} });
  } catch (err) {
    if (err instanceof Response) return { status: err.status, bytes: new Uint8Array(), text: '', rows: [] as string[][], res: err };
    throw err;
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  const rows: string[][] = parse(text.replace(/^\uFEFF/, ''), { relax_column_count: false });
  return { status: res.status, bytes, text, rows, res };
}

for (const kind of kinds) {
  describe(`list exports on ${kind}`, () => {
    let t: TestDb;
    let queues: Queues;
    let compliance: Browser & { operatorId: string };
    let viewer: Browser & { operatorId: string };

    beforeAll(async () => {
      t = await createTestDb(kind);
      const prefix = `tevx${kind}`;
      const env = parseEnv({
        NODE_ENV: 'test',
        DATABASE_URL: t.url,
        REDIS_URL: redisUrl(),
        QUEUE_PREFIX: prefix,
        PUBLIC_URL: ORIGIN,
        LOG_LEVEL: 'silent',
      });
      queues = new Queues({ redis: env.redis, prefix });
      setServices({ env, db: t.db, queues, dataKeys: parseDataKeys(undefined), logger });
      compliance = await signInAs(t.db, 'compliance');
      viewer = await signInAs(t.db, 'viewer');
      // 260 customers (more than one page at every page size), a few with formula-looking text.
      for (let i = 0; i < 260; i++) {
        const u = await insertUser(t.db, {
          email: `cust${String(i).padStart(3, '0')}@example.com`,
          externalUserId: i === 3 ? '=HYPERLINK("http://evil")' : i === 4 ? '+1-555' : `ext-${String(i).padStart(3, '0')}`,
          alias: i === 5 ? '@SUM(A1:A9)' : i === 6 ? 'Peña, "Núñez"' : i === 7 ? '-2+3' : null,
          type: i % 2 ? 'BUSINESS' : 'INDIVIDUAL',
          country: i % 3 === 0 ? 'MX' : i % 3 === 1 ? 'DO' : null,
        });
        await t.db
          .updateTable('users')
          .set({
            kycState: STATES[i % 6]!,
            createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
            kycStateChangedAt: new Date(Date.UTC(2026, 1, 1, 0, i)).toISOString(),
          })
          .where('id', '=', u.id)
          .execute();
        if (i % 4 === 0) {
          await insertMessage(t.db, {
            userId: u.id,
            kind: 'kyc_link',
            channel: 'email',
            locale: 'es',
            address: i === 8 ? '=cmd@example.com' : `cust${i}@example.com`,
            dedupeKey: `k-${i}`,
            failWith: i % 8 === 0 ? 'no e-mail address' : null,
          });
        }
      }
    });

    afterAll(async () => {
      setServices(undefined);
      await queues?.close();
      await t?.close();
    });

    async function listedUserIds(qs: string): Promise<string[]> {
      const ids: string[] = [];
      for (let page = 1; ; page++) {
        const r = await call(usersLoader, get(`/users?${qs}&size=100&page=${page}`, compliance));
        ids.push(...r.data.rows.map((x: { id: string }) => x.id));
        if (page >= r.data.pageCount) return ids;
      }
    }

    it.each([
      '',
      'state=REJECTED&state=VERIFIED&sort=email&dir=asc',
      'q=cust1&country=MX',
      'type=BUSINESS&sort=kycStateChangedAt&dir=asc&page=3&size=10',
    ])('the users export equals the filtered list over every page (%s)', async (qs) => {
      const got = await download(usersExport, `/users/export.csv?${qs}`, compliance);
      expect(got.status).toBe(200);
      expect(got.res.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
      const [header, ...rows] = got.rows;
      expect(header![0]).toBe('Id');
      const listed = await listedUserIds(qs.replace(/&?(page|size)=\d+/g, ''));
      expect(listed.length).toBeGreaterThan(0);
      expect(rows.map((r) => r[0])).toEqual(listed);
    });

    it('starts with a BOM and neutralises formula cells; Spanish headers for a Spanish reader', async () => {
      const got = await download(usersExport, '/users/export.csv?sort=email&dir=asc', compliance, { 'accept-language': 'es' });
      expect([...got.bytes.slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const [header, ...rows] = got.rows;
      expect(header).toContain('Correo electrónico');
      expect(header).toContain('Estado (código de Capa)');
      const ext = rows.map((r) => r[1]);
      const alias = rows.map((r) => r[3]);
      expect(ext).toContain(`'=HYPERLINK("http://evil")`);
      expect(ext).toContain(`'+1-555`);
      expect(alias).toContain(`'@SUM(A1:A9)`);
      expect(alias).toContain(`'-2+3`);
      expect(alias).toContain('Peña, "Núñez"');
      for (const row of rows) for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
      expect(rows.map((r) => r[6])).toContain('Rechazado');
    });

    it('the review queue export equals the filtered queue', async () => {
      for (const qs of ['', 'state=REJECTED&country=DO']) {
        const listed: string[] = [];
        for (let page = 1; ; page++) {
          const r = await call(reviewLoader, get(`/review?${qs}&page=${page}`, compliance));
          listed.push(...r.data.rows.map((x: { userId: string }) => x.userId));
          if (page >= r.data.pageCount) break;
        }
        const got = await download(reviewExport, `/review/export.csv?${qs}`, compliance);
        expect(got.status).toBe(200);
        expect(listed.length).toBeGreaterThan(qs ? 0 : 50);
        expect(got.rows.slice(1).map((r) => r[0])).toEqual(listed);
      }
    });

    it('the notifications export equals the filtered ledger and neutralises addresses', async () => {
      for (const qs of ['', 'status=failed&sort=createdAt&dir=asc']) {
        const listed: string[] = [];
        for (let page = 1; ; page++) {
          const r = await call(messagesLoader, get(`/notifications?${qs}&size=10&page=${page}`, compliance));
          listed.push(...r.data.rows.map((x: { id: string }) => x.id));
          if (page >= r.data.pageCount) break;
        }
        const got = await download(messagesExport, `/notifications/export.csv?${qs}`, compliance);
        expect(got.rows.slice(1).map((r) => r[0])).toEqual(listed);
        expect(listed.length).toBeGreaterThan(0);
      }
      const all = await download(messagesExport, '/notifications/export.csv', compliance);
      expect(all.rows.slice(1).map((r) => r[6])).toContain("'=cmd@example.com");
    });

    it('audits every export with its list and filters', async () => {
      await download(usersExport, '/users/export.csv?state=VERIFIED&q=cust', compliance);
      const row = await t.db
        .selectFrom('auditLog')
        .selectAll()
        .where('action', '=', 'evidence.list_export')
        .where('targetId', '=', 'users')
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow();
      expect(row.operatorId).toBe(compliance.operatorId);
      const detail = typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail;
      expect(detail.filters).toMatchObject({ states: ['VERIFIED'], q: 'cust' });
    });

    it('refuses viewers and anonymous callers', async () => {
      for (const [fn, path] of [
        [usersExport, '/users/export.csv'],
        [reviewExport, '/review/export.csv'],
        [messagesExport, '/notifications/export.csv'],
      ] as const) {
        const v = await download(fn, path, viewer);
        expect(v.status).toBe(403);
        expect(v.text).not.toContain('example.com');
        const anon = await call(fn, get(path, null));
        expect([302, 401]).toContain(anon.status);
      }
    });
  });
}
