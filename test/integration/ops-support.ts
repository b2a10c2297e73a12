import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ServerBuild } from '@remix-run/node';
import { createOperator } from '../../app/operator-accounts.server.js';
import { createSession } from '../../db/repositories/sessions.js';
import type { Db } from '../../db/client.js';
import type { Role } from '../../db/schema.js';
import { createWebApp, hostOf } from '../../server/web.js';
import { serveServicesTo } from '../support/runtime.js';

/**
 * Test support for the operations views: a real Remix build of the root and the operations
 * routes (compiled with Remix's own compiler into a private folder, so a concurrent `npm run build`
 * or someone else's half-written route cannot interfere), served by the real createWebApp over
 * HTTP, and signed-in operators with real sessions.
 */
const require = createRequire(import.meta.url);

/** Route files the operations tests exercise (plus root). */
const OPS_ROUTE_FILES = [
  'routes/webhooks._index.tsx',
  'routes/webhooks.$id.tsx',
  'routes/queues.tsx',
  'routes/capa.deliveries._index.tsx',
  'routes/capa.deliveries.$id.tsx',
  'routes/admin.settings.tsx',
  'routes/metrics.ts',
  'routes/readyz.ts',
  'routes/healthz.ts',
];

export async function buildOpsApp(): Promise<{ build: ServerBuild; cleanup(): void }> {
  const { readConfig } = require('@remix-run/dev/dist/config.js');
  const { build } = require('@remix-run/dev/dist/compiler/build.js');
  const { createFileWatchCache } = require('@remix-run/dev/dist/compiler/fileWatchCache.js');
  const { logger } = require('@remix-run/dev/dist/tux/logger.js');
  const root = path.resolve('.');
  // Inside node_modules so the build's bare imports resolve to the project's packages.
  const dir = path.join(root, 'node_modules', '.cache', `ops-test-build-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const config = await readConfig(root, 'production');
  const routes = Object.fromEntries(
    Object.entries(config.routes as Record<string, { file: string }>).filter(
      ([id, r]) => id === 'root' || OPS_ROUTE_FILES.includes(r.file),
    ),
  );
  const cfg = {
    ...config,
    routes,
    serverBuildPath: path.join(dir, 'index.js'),
    assetsBuildDirectory: path.join(dir, 'public'),
    relativeAssetsBuildDirectory: path.relative(root, path.join(dir, 'public')),
  };
  await build({ config: cfg, options: { mode: 'production', sourcemap: false }, fileWatchCache: createFileWatchCache(), logger });
  const mod = (await import(pathToFileURL(cfg.serverBuildPath).href)) as ServerBuild;
  return { build: mod, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Served {
  url: string;
  close(): Promise<void>;
}

export async function serveWebApp(build: ServerBuild): Promise<Served> {
  serveServicesTo(hostOf(build));
  const app = await createWebApp({ build, production: false });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface TestOperator {
  id: string;
  email: string;
  role: Role;
  csrf: string;
  /** Cookie header value for this operator's session. */
  cookie: string;
}

/**
 * An operator with a live session. The cookie is serialised by the console's own cookie (so it is
 * signed exactly like a real sign-in).
 */
export async function signedInOperator(db: Db, role: Role, tag: string = role): Promise<TestOperator> {
  const email = `${tag}-${randomBytes(3).toString('hex')}@ops.test`;
  const op = await createOperator(db, { email, name: `${tag} operator`, role, password: 'correct horse battery' });
  const s = await createSession(db, { operatorId: op.id, userAgent: 'vitest', ip: null }, { idleMs: 3_600_000, maxMs: 3_600_000 * 12 });
  const { createCookie } = await import('@remix-run/node');
  const { services } = await import('../../app/services.server.js');
  const e = (await services()).env;
  const cookie = createCookie('kyc_session', { httpOnly: true, sameSite: 'lax', secure: false, path: '/', secrets: [e.sessionSecret] });
  const header = await cookie.serialize(s.id);
  return { id: op.id, email, role, csrf: s.csrfToken, cookie: header.split(';')[0]! };
}

/** A form POST from one of our pages (Origin set, CSRF token included). */
export function postForm(
  base: string,
  pathName: string,
  who: TestOperator | null,
  fields: Record<string, string>,
  extraHeaders: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}${pathName}`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      origin: base,
      ...(who ? { cookie: who.cookie } : {}),
      ...extraHeaders,
    },
    body: new URLSearchParams({ ...(who ? { csrf: who.csrf } : {}), ...fields }),
  });
}

export function get(base: string, pathName: string, who: TestOperator | null, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${pathName}`, { redirect: 'manual', headers: { ...(who ? { cookie: who.cookie } : {}), ...headers } });
}

/** Remix single-fetch: `<path>.data` answers a loader/action as turbo-stream; we only need HTML/status here. */
export async function text(r: Response): Promise<string> {
  return r.text();
}
