import express, { type RequestHandler, type Router } from 'express';
import { logger } from '../lib/logger.js';
import type { WebhookIntake } from '../app/host.server.js';

/**
 * POST /webhooks/capa served straight from express, ahead of the Remix handler and of every
 * page middleware (helmet, compression, static files): Capa is a machine caller, and each
 * millisecond here is a millisecond of Capa's retry clock (docs/decisions/003). It runs the same
 * receiveWebhook as the Remix route app/routes/webhooks.capa.ts, which stays as the fallback for
 * deployments that serve the Remix build without this server. `intake` comes from that build
 * (WebHost.webhookIntake), so both paths share one group commit and one metrics registry.
 */
export function capaWebhookRouter(intake: WebhookIntake): Router {
  const router = express.Router();
  const raw = express.raw({ type: () => true, limit: intake.maxBytes });
  const handler: RequestHandler = async (req, res) => {
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const r = await intake.receive(body, headers);
      res.status(r.status).json(r.body);
    } catch (err) {
      // The delivery could not be stored: not acknowledged, so Capa retries.
      logger.error({ err: (err as Error).message }, 'webhook intake could not store a delivery');
      res.status(503).json({ ok: false, error: 'temporarily unable to store the delivery' });
    }
  };
  router.post('/webhooks/capa', raw, handler);
  router.all('/webhooks/capa', (_req, res) => {
    res.status(405).set('Allow', 'POST').json({ ok: false, error: 'use POST' });
  });
  // body-parser reports oversized and unreadable bodies as errors with a status.
  router.use('/webhooks/capa', ((err, _req, res, next) => {
    if (err?.type === 'entity.too.large') {
      intake.tooLarge();
      res.status(413).json({ ok: false, error: `body larger than ${intake.maxBytes} bytes` });
    } else if (err?.status >= 400 && err.status < 500)
      res.status(err.status).json({ ok: false, error: String(err.message ?? 'bad request') });
    else next(err);
  }) as express.ErrorRequestHandler);
  return router;
}
