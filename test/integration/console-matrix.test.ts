import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { insertUser } from '../../db/repositories/users.js';
import type { Role } from '../../db/schema.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { setServices } from '../../app/services.server';
import { sessionHeadersFor } from '../../app/auth.server';
import { loader as rootLoader } from '../../app/root';
import { createTestDb, redisUrl, type TestDb } from '../support/runtime.js';
import { call, get, makeOperator, ORIGIN, post, type Browser } from './console-helpers.js';

/**
 * Role × route matrix over every file in app/routes. Routes of this console declare their minimum
 * role below; any other route (added by other features) must at least refuse anonymous access
 * unless listed as public. A new route is covered the moment it exists.
 */
type Min = Role | 'public';
const EXPECT: Record<string, { loader?: Min; action?: Min }> = {
  _index: { loader: 'viewer' },
  'users._index': { loader: 'viewer' },
  'users.new': { loader: 'compliance', action: 'compliance' },
  'users.$id': { loader: 'viewer', action: 'compliance' },
  'admin.operators': { loader: 'admin', action: 'admin' },
  // Viewers see alerts; compliance acknowledges and silences (thresholds and recipients: admins, alerts-console.test.ts).
  alerts: { loader: 'viewer', action: 'compliance' },
  logout: { loader: 'viewer', action: 'viewer' },
  login: { loader: 'public', action: 'public' },
  setup: { loader: 'public', action: 'public' },
  // Single sign-on starts and returns before anyone is signed in.
  'auth.oidc._index': { loader: 'public' },
  'auth.oidc.callback': { loader: 'public' },
  // The second-factor pages serve sessions that wait for a factor, and signed-in operators adding one.
  'auth.mfa._index': { loader: 'viewer', action: 'viewer' },
  'auth.mfa.enrol': { loader: 'viewer', action: 'viewer' },
  'auth.passkey': { action: 'viewer' },
  'kyc.return': {},
};
/** Public by design (machine endpoints); tested by their owners. */
const PUBLIC = new Set(['healthz', 'readyz', 'webhooks.capa', 'metrics', 'kyc.return']);

const ROUTES_DIR = path.resolve('app/routes');
const routeFiles = readdirSync(ROUTES_DIR)
  .filter((f) => /\.(tsx?|jsx?)$/.test(f) && !/\.test\./.test(f) && !f.startsWith('.'))
  .map((f) => ({ file: f, id: f.replace(/\.(tsx?|jsx?)$/, '').replace(/\/route$/, '') }));

const RANK: Record<Role, number> = { viewer: 0, compliance: 1, admin: 2 };
const ROLES: Array<Role | 'anonymous'> = ['anonymous', 'viewer', 'compliance', 'admin'];

let t: TestDb;
let queues: Queues;
let userId: string;
const operators = new Map<Role, string>();

beforeAll(async () => {
  t = await createTestDb();
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: 'tmatrix',
    PUBLIC_URL: ORIGIN,
    LOG_LEVEL: 'silent',
  });
  queues = new Queues({ redis: env.redis, prefix: 'tmatrix' });
  setServices({ env, db: t.db, queues, dataKeys: parseDataKeys(undefined), logger });
  for (const r of ['viewer', 'compliance', 'admin'] as Role[]) operators.set(r, (await makeOperator(t.db, r)).id);
  userId = (await insertUser(t.db, { email: 'matrix@example.com', type: 'INDIVIDUAL', country: 'MX' })).id;
});

afterAll(async () => {
  setServices(undefined);
  await queues.close();
  await t.close();
});

/** A fresh session per call, so a sign-out in one cell does not leak into the next. */
async function browser(role: Role | 'anonymous'): Promise<Browser | null> {
  if (role === 'anonymous') return null;
  const set = (await sessionHeadersFor(new Request(ORIGIN), operators.get(role)!)).get('set-cookie')!;
  const cookie = set.split(';')[0]!;
  const root = await call(rootLoader, get('/', { cookie, csrf: '', role }));
  return { cookie, csrf: root.data.csrfToken, role };
}

function paramsFor(id: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const seg of id.split('.')) if (seg.startsWith('$')) out[seg.slice(1)] = seg === '$id' ? userId : 'x';
  return out;
}

function pathFor(id: string, params: Record<string, string>): string {
  if (id === '_index') return '/';
  const segs = id
    .split('.')
    .filter((s) => s !== '_index' && !s.startsWith('_'))
    .map((s) => (s.startsWith('$') ? (params[s.slice(1)] ?? 'x') : s.replace(/_$/, '')));
  return `/${segs.join('/')}`;
}

const isLoginRedirect = (r: { status: number; location: string | null }) => r.status === 302 && (r.location ?? '').startsWith('/login');

describe('role × route matrix', () => {
  it('finds the routes', () => {
    expect(routeFiles.map((r) => r.id)).toEqual(expect.arrayContaining(Object.keys(EXPECT)));
  });

  for (const { file, id } of routeFiles) {
    describe(id, () => {
      for (const kind of ['loader', 'action'] as const) {
        for (const role of ROLES) {
          it(`${kind} as ${role}`, async () => {
            const mod = (await import(path.join(ROUTES_DIR, file))) as Record<string, unknown>;
            const fn = mod[kind] as ((a: unknown) => unknown) | undefined;
            if (!fn) {
              expect(EXPECT[id]?.[kind]).toBeUndefined();
              return;
            }
            const params = paramsFor(id);
            const url = pathFor(id, params);
            const b = await browser(role);
            const req = kind === 'loader' ? get(url, b) : post(url, b, {});
            const res = await call(fn, req, params);
            const min = EXPECT[id]?.[kind];
            if (min === undefined) {
              // A route this console does not own: it must refuse anonymous callers (unless public).
              if (PUBLIC.has(id) || role !== 'anonymous') return;
              expect(
                isLoginRedirect(res) || res.status === 401 || res.status === 403,
                `${id} ${kind} must refuse anonymous (got ${res.status})`,
              ).toBe(true);
              return;
            }
            if (min === 'public') {
              expect(res.status).toBeLessThan(500);
              return;
            }
            if (role === 'anonymous') {
              expect(isLoginRedirect(res), `${id} ${kind} anonymous → login (got ${res.status} ${res.location})`).toBe(true);
            } else if (RANK[role] < RANK[min]) {
              expect(res.status, `${id} ${kind} as ${role} must be 403`).toBe(403);
            } else {
              expect(res.status, `${id} ${kind} as ${role}: ${JSON.stringify(res.data).slice(0, 200)}`).toBeLessThan(500);
              expect(res.status).not.toBe(403);
              expect(isLoginRedirect(res) && id !== 'logout').toBe(false);
            }
          });
        }
      }
    });
  }
});
