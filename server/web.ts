import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequestHandler } from '@remix-run/express';
import type { ServerBuild } from '@remix-run/node';
import compression from 'compression';
import express, { type Express } from 'express';
import { checkAlertEnv } from '../jobs/alerts/config.js';
import { startAlertWatch } from '../jobs/alerts/watch.js';
import { env as readEnv } from '../lib/config.js';
import { logger } from '../lib/logger.js';
import { mountBullBoard } from './bull-board.js';
import { securityHeaders } from './security-headers.js';
import { stampClientAddress } from '../lib/client-address.js';
import { capaWebhookRouter } from './webhook-http.js';
import type { WebHost } from '../app/host.server.js';

export interface WebOptions {
  build?: ServerBuild;
  production?: boolean;
  /** Extra express mounts (the operations views mount bull-board here). */
  mount?: (app: Express, build: ServerBuild) => void | Promise<void>;
  /** express "trust proxy" (env TRUST_PROXY); default `loopback`. */
  trustProxy?: string | number;
}

export async function loadBuild(): Promise<ServerBuild> {
  const file = path.resolve('build/index.js');
  try {
    return (await import(pathToFileURL(file).href)) as ServerBuild;
  } catch (err) {
    throw new Error(`cannot load the web build at ${file} (run \`npm run build\` first): ${(err as Error).message}`);
  }
}

/**
 * The app's pieces this host needs, from the build's own entry module (app/entry.server.tsx
 * exports `host`). Taking them from the build rather than importing app/ source keeps one copy
 * of the app in the process: one set of services, one metrics registry, one intake group commit.
 */
export function hostOf(build: ServerBuild): WebHost {
  const host = (build.entry.module as { host?: WebHost }).host;
  if (!host) throw new Error('the web build has no host exports (app/entry.server.tsx exports `host`); rebuild it with `npm run build`');
  return host;
}

/**
 * Defence in depth against cross-site form posts: a state-changing request whose Origin names
 * another site is refused here with a clear 403 (the session-bound CSRF token is still checked by
 * every action). Capa's webhook is served earlier and carries its own signature.
 */
const refuseCrossSite =
  (host: WebHost): express.RequestHandler =>
  (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    if (req.path.startsWith('/admin/queues')) return next(); // bull-board's guard checks and audits
    const origin = req.get('origin');
    if (!origin) return next(); // no Origin: the action's CSRF token decides
    let sameSite = false;
    try {
      sameSite = origin !== 'null' && new URL(origin).host === req.get('host');
    } catch {
      sameSite = false;
    }
    if (sameSite) return next();
    res.status(403).type('text/plain').send('Refused: this form was sent from another site. Open KYC Desk and try again.');
    host.auditCrossSiteRefusal(req.path, origin, req.ip ?? null).catch((err) => {
      logger.warn({ err: (err as Error).message }, 'could not audit a refused cross-site request');
    });
  };

export async function createWebApp(opts: WebOptions = {}): Promise<Express> {
  const build = opts.build ?? (await loadBuild());
  const host = hostOf(build);
  host.startMetrics();
  const app = express();
  app.disable('x-powered-by');
  // Who may set X-Forwarded-For: the client address for the audit log and /metrics come from it.
  app.set('trust proxy', opts.trustProxy ?? 'loopback');
  app.use(capaWebhookRouter(host.webhookIntake));
  app.use(securityHeaders({ production: opts.production ?? process.env.NODE_ENV === 'production' }));
  app.use(refuseCrossSite(host));
  app.use(compression({ filter: (req, res) => !req.path.startsWith('/webhooks') && compression.filter(req, res) }));
  app.use('/build', express.static('public/build', { immutable: true, maxAge: '1y' }));
  app.use(express.static('public', { maxAge: '1h', index: false }));
  // bull-board for admins, behind the console's own session check.
  mountBullBoard(app, host.queueBoard);
  await opts.mount?.(app, build);
  app.use(stampClientAddress());
  app.all(
    '*',
    createRequestHandler({
      build,
      mode: opts.production ? 'production' : (process.env.NODE_ENV ?? 'production'),
      // clientAddress: req.ip (X-Forwarded-For honoured only from a loopback proxy); /metrics uses it.
      getLoadContext: (req, res) => ({ cspNonce: res.locals.cspNonce as string, clientAddress: req.ip }),
    }),
  );
  return app;
}

async function main(): Promise<void> {
  process.env.KYC_PROCESS ??= 'web';
  const e = readEnv();
  checkAlertEnv(e);
  const build = await loadBuild();
  const app = await createWebApp({ build, production: e.NODE_ENV === 'production', trustProxy: e.TRUST_PROXY });
  // "No worker is running" cannot be noticed by a worker: this process watches for it, and sends
  // alert messages itself while no worker can (jobs/alerts/watch.ts).
  const watch = startAlertWatch(async () => {
    const s = await hostOf(build).services();
    return { db: s.db, queues: s.queues, env: s.env, logger: s.logger };
  }, e.ALERTS_EVERY_SECONDS * 1000);
  const server = app.listen(e.PORT, e.HOST, () => logger.info({ listen: `http://${e.HOST}:${e.PORT}` }, 'web listening'));
  server.keepAliveTimeout = 65_000;
  const stop = (signal: string) => {
    logger.info({ signal }, 'web shutting down');
    watch.stop();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), e.SHUTDOWN_TIMEOUT_MS).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error('web failed to start:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
