import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { insertUser } from '../../db/repositories/users.js';
import type { KycState } from '../../db/schema.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { setServices } from '../../app/services.server';
import { parseListParams } from '../../app/users.server';
import { loader as listLoader } from '../../app/routes/users._index';
import { loader as homeLoader } from '../../app/routes/_index';
import { createTestDb, redisUrl, type TestDb } from '../support/runtime.js';
import { call, get, ORIGIN, signInAs, type Browser } from './console-helpers.js';

let t: TestDb;
let queues: Queues;
let compliance: Browser & { operatorId: string };
let viewer: Browser & { operatorId: string };

const STATES: KycState[] = ['NOT_STARTED', 'LINK_ISSUED', 'IN_PROGRESS', 'VERIFIED', 'REJECTED', 'REVIEW_NEEDED'];

beforeAll(async () => {
  t = await createTestDb();
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: 'tusers',
    PUBLIC_URL: ORIGIN,
    LOG_LEVEL: 'silent',
  });
  queues = new Queues({ redis: env.redis, prefix: 'tusers' });
  setServices({ env, db: t.db, queues, dataKeys: parseDataKeys(undefined), logger });
  compliance = await signInAs(t.db, 'compliance');
  viewer = await signInAs(t.db, 'viewer');
  // 60 customers: state i%6, type alternating, country MX/DO/none, one per day from 2026-01-01.
  for (let i = 0; i < 60; i++) {
    const u = await insertUser(t.db, {
      email: `user${String(i).padStart(2, '0')}@example.com`,
      externalUserId: `ext-${String(i).padStart(3, '0')}`,
      type: i % 2 ? 'BUSINESS' : 'INDIVIDUAL',
      country: i % 3 === 0 ? 'MX' : i % 3 === 1 ? 'DO' : null,
      alias: i === 7 ? 'Zorro 100%' : null,
    });
    const created = new Date(Date.UTC(2026, 0, 1 + i, 12)).toISOString();
    await t.db
      .updateTable('users')
      .set({
        kycState: STATES[i % 6]!,
        createdAt: created,
        kycStateChangedAt: new Date(Date.UTC(2026, 2, 1 + (59 - i))).toISOString(),
        capaUserId: i === 11 ? 'capa-uid-eleven' : null,
        assigneeId: i < 5 ? compliance.operatorId : null,
      })
      .where('id', '=', u.id)
      .execute();
  }
});

afterAll(async () => {
  setServices(undefined);
  await queues.close();
  await t.close();
});

const list = async (qs: string, b: Browser = compliance) => {
  const r = await call(listLoader, get(`/users${qs}`, b));
  expect(r.status).toBe(200);
  return r.data;
};

describe('users list', () => {
  it('pages newest first by default with counts per state', async () => {
    const d = await list('');
    expect(d.total).toBe(60);
    expect(d.rows).toHaveLength(25);
    expect(d.pageCount).toBe(3);
    expect(d.rows[0].email).toBe('user59@example.com');
    expect(d.countsByState).toEqual({ NOT_STARTED: 10, LINK_ISSUED: 10, IN_PROGRESS: 10, VERIFIED: 10, REJECTED: 10, REVIEW_NEEDED: 10 });
    const p3 = await list('?page=3');
    expect(p3.rows).toHaveLength(10);
    expect(p3.rows.at(-1).email).toBe('user00@example.com');
    // Out-of-range pages clamp instead of showing nothing.
    expect((await list('?page=99')).page).toBe(3);
  });

  it('filters by state (chips keep counting the other states), type, country, dates and assignee', async () => {
    const v = await list('?state=VERIFIED');
    expect(v.total).toBe(10);
    expect(v.rows.every((r: { kycState: string }) => r.kycState === 'VERIFIED')).toBe(true);
    expect(v.countsByState.REJECTED).toBe(10);
    const two = await list('?state=VERIFIED&state=REJECTED');
    expect(two.total).toBe(20);
    const biz = await list('?type=BUSINESS&country=DO');
    expect(biz.rows.every((r: { type: string; country: string }) => r.type === 'BUSINESS' && r.country === 'DO')).toBe(true);
    expect(biz.total).toBe(10);
    const jan = await list('?from=2026-01-10&to=2026-01-19');
    expect(jan.total).toBe(10);
    const mine = await list(`?assignee=${compliance.operatorId}`);
    expect(mine.total).toBe(5);
    expect(mine.rows[0].assigneeName).toBe('compliance operator');
    expect((await list('?assignee=none')).total).toBe(55);
  });

  it('searches e-mail, externalUserId, Capa userId and alias (LIKE wildcards are literal)', async () => {
    expect((await list('?q=USER42')).rows.map((r: { email: string }) => r.email)).toEqual(['user42@example.com']);
    expect((await list('?q=ext-033')).total).toBe(1);
    expect((await list('?q=capa-uid-eleven')).rows[0].email).toBe('user11@example.com');
    expect((await list('?q=zorro')).rows[0].email).toBe('user07@example.com');
    expect((await list('?q=100%25')).total).toBe(1);
    expect((await list('?q=%25')).total).toBe(1); // only the alias with a literal %
    expect((await list('?q=_')).total).toBe(0);
    const none = await list('?q=nobody-like-this');
    expect(none.total).toBe(0);
    expect(none.rows).toEqual([]);
  });

  it('sorts server-side by any sortable column, stably across pages', async () => {
    const byEmail = await list('?sort=email&dir=asc&size=10');
    expect(byEmail.rows.map((r: { email: string }) => r.email).slice(0, 3)).toEqual([
      'user00@example.com',
      'user01@example.com',
      'user02@example.com',
    ]);
    const byChange = await list('?sort=kycStateChangedAt&dir=asc&size=10');
    expect(byChange.rows[0].email).toBe('user59@example.com');
    const byState = await list('?sort=kycState&dir=asc&size=100');
    const states = byState.rows.map((r: { kycState: string }) => r.kycState);
    expect(states).toEqual([...states].sort());
    // Paging through every page sees each row exactly once.
    const seen = new Set<string>();
    for (let p = 1; p <= 6; p++) for (const r of (await list(`?sort=type&dir=asc&size=10&page=${p}`)).rows) seen.add(r.id);
    expect(seen.size).toBe(60);
  });

  it('ignores malformed parameters instead of failing (shared links always open)', async () => {
    const p = parseListParams(new URLSearchParams('state=BOGUS&type=X&country=US&from=yesterday&sort=passwordHash&dir=up&page=-3&size=7'));
    expect(p).toMatchObject({
      states: [],
      type: null,
      country: null,
      createdFrom: null,
      sort: 'createdAt',
      dir: 'desc',
      page: 1,
      pageSize: 25,
    });
    expect((await list('?sort=1;drop table users&page=abc')).total).toBe(60);
  });

  it('masks e-mails for viewers', async () => {
    const d = await list('?q=user42', viewer);
    expect(d.rows[0].email).toBe('u•••••@example.com');
    expect(JSON.stringify(d)).not.toContain('user42@');
  });
});

describe('home', () => {
  it('counts by state, the funnel and the oldest waiting per stage', async () => {
    const r = await call(homeLoader, get('/', viewer));
    expect(r.status).toBe(200);
    const d = r.data;
    expect(d.counts.VERIFIED).toBe(10);
    expect(d.funnel.map((s: { key: string; count: number }) => [s.key, s.count])).toEqual([
      ['created', 60],
      ['link_sent', 50],
      ['started', 40],
      ['verified', 10],
      ['rejected', 10],
      ['review_needed', 10],
    ]);
    const notStarted = d.oldest.find((o: { state: string }) => o.state === 'NOT_STARTED');
    expect(notStarted.users).toHaveLength(5);
    expect(notStarted.users[0].email).toMatch(/•/); // viewer: masked
    // Oldest = earliest kycStateChangedAt: user54 (i=54 → 2026-03-06) is the oldest NOT_STARTED.
    expect(notStarted.users[0].externalUserId).toBe('ext-054');
  });
});
