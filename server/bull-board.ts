import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Express, NextFunction, Request as ExpressRequest, RequestHandler, Response as ExpressResponse } from 'express';
import type { QueueBoard } from '../app/host.server.js';
import type { SignedIn } from '../app/auth.server.js';
import { logger } from '../lib/logger.js';

/**
 * bull-board (the job-level queue UI) under /admin/queues, for admins only. We do not rewrite a
 * queue UI; our /queues page summarises and links here. The guard reuses the console's own session
 * check (app/auth.server.ts requireOperator, reached through the build's QueueBoard): the same
 * cookie, the sessions/operators tables, the same idle and absolute timeouts, the same audited
 * denial — so there is one definition of "signed in as admin". Signed out → redirect to /login;
 * not an admin → 403.
 */
export const BULL_BOARD_PATH = '/admin/queues';

/** The parts of an express request the console's guards read (no body: bull-board parses its own). */
export function toWebRequest(req: ExpressRequest): Request {
  const host = req.get('host') ?? 'localhost';
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string') headers.set(k, v);
    else if (Array.isArray(v)) headers.set(k, v.join(', '));
  }
  return new Request(`${req.protocol}://${host}${req.originalUrl}`, { method: req.method, headers });
}

async function sendWebResponse(res: ExpressResponse, r: Response): Promise<void> {
  res.status(r.status);
  r.headers.forEach((v, k) => res.setHeader(k, v));
  res.send(Buffer.from(await r.arrayBuffer()));
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Express guard: admin session required; state-changing calls must come from our own pages and are audited. */
export function adminOnly(guard: QueueBoard): RequestHandler {
  return async (req: ExpressRequest, res: ExpressResponse, next: NextFunction) => {
    const request = toWebRequest(req);
    let who: SignedIn;
    try {
      who = await guard.requireAdmin(request);
    } catch (thrown) {
      if (thrown instanceof Response) return sendWebResponse(res, thrown).catch(next);
      return next(thrown);
    }
    try {
      if (!READ_METHODS.has(req.method)) {
        // bull-board's API is cookie-authenticated: refuse cross-site writes (CSRF) like every console action.
        if (!(await guard.sameOrigin(request))) {
          await guard.audit(request, who, {
            action: 'queues.board',
            targetType: 'route',
            targetId: `${req.method} ${req.originalUrl}`.slice(0, 300),
            outcome: 'denied',
            detail: { reason: 'cross-site request' },
          });
          res.status(403).type('text/plain').send('This request came from another site and was refused.');
          return;
        }
        res.on('finish', () => {
          guard
            .audit(request, who, {
              action: 'queues.board',
              targetType: 'route',
              targetId: `${req.method} ${req.originalUrl}`.slice(0, 300),
              outcome: res.statusCode < 400 ? 'ok' : 'error',
              detail: { status: res.statusCode },
            })
            .catch((err) => logger.error({ err: (err as Error).message }, 'could not audit a bull-board action'));
        });
      }
      res.setHeader('Cache-Control', 'no-store');
      next();
    } catch (err) {
      next(err);
    }
  };
}

type Board = (req: ExpressRequest, res: ExpressResponse, next: NextFunction) => void;

async function createBoard(board: QueueBoard): Promise<Board> {
  const queues = await board.queues();
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q)),
    // @bull-board/express pins its own copy of @bull-board/api for types only; the interface is the same.
    serverAdapter: serverAdapter as never,
    options: { uiConfig: { boardTitle: 'KYC Desk queues' } },
  });
  const router = serverAdapter.getRouter() as Board & { disable?: (s: string) => void };
  router.disable?.('x-powered-by');
  return router;
}

/**
 * Mounts the guarded board. bull-board brings its own express 5 app; it is called as a plain
 * function (not mounted as a sub-app) so express 4 does not re-parent it, and the request/response
 * prototypes it swaps in are restored if it ever hands a request back.
 */
export function mountBullBoard(app: Express, queueBoard: QueueBoard): void {
  let board: Promise<Board> | undefined;
  app.use(BULL_BOARD_PATH, adminOnly(queueBoard), (req, res, next) => {
    board ??= createBoard(queueBoard).catch((err) => {
      board = undefined;
      throw err;
    });
    const reqProto = Object.getPrototypeOf(req);
    const resProto = Object.getPrototypeOf(res);
    board.then(
      (b) =>
        b(req, res, (err?: unknown) => {
          Object.setPrototypeOf(req, reqProto);
          Object.setPrototypeOf(res, resProto);
          next(err);
        }),
      next,
    );
  });
}
