import { readdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataKeys } from '../../db/encryption.js';
import { insertUser } from '../../db/repositories/users.js';
import { Queues } from '../../jobs/queues.js';
import { parseEnv } from '../../lib/config.js';
import { logger } from '../../lib/logger.js';
import { setServices } from '../../app/services.server';
import { sessionHeadersFor } from '../../app/auth.server';
import { loader as rootLoader } from '../../app/root';
import { createTestDb, redisUrl, type TestDb } from '../support/runtime.js';
import { call, get, makeOperator, ORIGIN, post, type Browser } from './console-helpers.js';

/**
 * Fuzzing forms: every action of every route, signed in as an admin with a valid CSRF
 * token, fed random field sets (the field names our forms use, with empty, huge, unicode and
 * hostile values). The answer is always a page, a redirect or a 4xx — never a 500 or a crash.
 */
const ROUTES_DIR = path.resolve('app/routes');
const FIELDS = [
  'intent',
  'email',
  'type',
  'country',
  'alias',
  'externalUserId',
  'requestId',
  'sendLink',
  'role',
  'name',
  'password',
  'status',
  'reason',
  'comment',
  'body',
  'due',
  'title',
  'assignee',
  'assigneeId',
  'url',
  'locale',
  'language',
  'ids',
  'id',
  'userId',
  'taskId',
  'kind',
  'next',
  'token',
  'confirm',
  'scope',
  'selected',
  'notify',
  'redirectUri',
];
const INTENTS = [
  'create',
  'link',
  'resend',
  'fetch',
  'retry',
  'claim',
  'claim-next',
  'assign',
  'note',
  'task',
  'complete-task',
  'status',
  'stop',
  'commit',
  'cancel',
  'pause',
  'resume',
  'retry-failed',
  'reprocess',
  'retry-all',
  'set-url',
  'disable',
  'reset-password',
  'add',
  'verify',
  'preview',
  'run',
  'x',
];

const value = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.fullUnicodeString({ maxLength: 30 }),
  fc.constantFrom(
    '',
    ' ',
    'MX',
    'DO',
    'US',
    'INDIVIDUAL',
    'BUSINESS',
    'admin',
    'viewer',
    'resolved',
    'yes',
    'no',
    'true',
    '-1',
    '0',
    '1e309',
    'NaN',
    '2026-13-45',
    'a@b.mx',
    'not-an-email',
    'javascript:alert(1)',
    '<script>x</script>',
    "'; drop table users; --",
    '../../etc/passwd',
    '\u0000',
    'x'.repeat(10_000),
  ),
);
const form = fc.record({
  intent: fc.constantFrom(...INTENTS),
  extra: fc.dictionary(fc.constantFrom(...FIELDS), fc.oneof(value, fc.array(value, { maxLength: 3 })), { maxKeys: 8 }),
});

let t: TestDb;
let queues: Queues;
let adminId: string;
let userId: string;

beforeAll(async () => {
  t = await createTestDb();
  // Capa is unreachable here on purpose: actions that call it must say so, not fail with 500.
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: 'tformfuzz',
    PUBLIC_URL: ORIGIN,
    LOG_LEVEL: 'silent',
    CAPA_BASE_URL: 'http://127.0.0.1:9',
    CAPA_TIMEOUT_MS: '300',
  });
  queues = new Queues({ redis: env.redis, prefix: 'tformfuzz' });
  setServices({ env, db: t.db, queues, dataKeys: parseDataKeys(undefined), logger });
  adminId = (await makeOperator(t.db, 'admin')).id;
  userId = (await insertUser(t.db, { email: 'fuzz-target@example.mx', type: 'INDIVIDUAL', country: 'MX' })).id;
});

afterAll(async () => {
  setServices(undefined);
  await queues.close();
  await t.close();
});

async function admin(): Promise<Browser> {
  const set = (await sessionHeadersFor(new Request(ORIGIN), adminId)).get('set-cookie')!;
  const cookie = set.split(';')[0]!;
  const root = await call(rootLoader, get('/', { cookie, csrf: '', role: 'admin' }));
  return { cookie, csrf: root.data.csrfToken, role: 'admin' };
}

const routes = readdirSync(ROUTES_DIR)
  .filter((f) => /\.tsx?$/.test(f) && !/\.test\./.test(f))
  .map((f) => ({ file: f, id: f.replace(/\.tsx?$/, '') }));

const statuses = new Map<number, number>();

describe('every form action under random input', () => {
  afterAll(() => {
    // The fuzz only means something if forms got past the guards: most answers are not 403.
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    const refused = statuses.get(403) ?? 0;
    console.log('form fuzz statuses', Object.fromEntries(statuses));
    expect(refused / Math.max(total, 1)).toBeLessThan(0.5);
  });
  for (const { file, id } of routes) {
    if (id === 'webhooks.capa' || id === 'logout' || id === 'login' || id === 'setup') continue; // machine endpoint; sign-in/out forms are fuzzed by their own tests
    it(`${id}: never a 500`, async () => {
      const mod = (await import(path.join(ROUTES_DIR, file))) as { action?: (a: unknown) => unknown };
      if (!mod.action) return;
      const params: Record<string, string> = {};
      for (const seg of id.split('.')) if (seg.startsWith('$')) params[seg.slice(1)] = seg === '$id' || seg === '$userId' ? userId : 'x';
      const url = `/${id
        .split('.')
        .filter((s) => s !== '_index' && !s.startsWith('_'))
        .map((s) => (s.startsWith('$') ? params[s.slice(1)] : s.replace(/_$/, '')))
        .join('/')}`;
      const b = await admin();
      await fc.assert(
        fc.asyncProperty(form, async ({ intent, extra }) => {
          const res = await call(mod.action!, post(url, b, { intent, ...extra }), params);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(
            res.status,
            `${id} ${intent} ${JSON.stringify(extra).slice(0, 300)} → ${JSON.stringify(res.data).slice(0, 300)}`,
          ).toBeLessThan(500);
        }),
        { numRuns: 25, seed: 11 },
      );
    }, 120_000);
  }
});
