import { readLimitedBody } from '../lib/body.js';
import { MAX_WEBHOOK_BYTES, receiveWebhook, type IntakeDeps } from './webhook-intake.server.js';
import { services } from './services.server';
import { metrics } from './metrics.server';

/** The intake's dependencies in this process: its services, with refusals counted in /metrics. */
export async function intakeDeps(): Promise<IntakeDeps> {
  const s = await services();
  return { db: s.db, enqueue: s.queues, secrets: s.env.CAPA_WEBHOOK_SECRET, onOutcome: (verdict) => metrics.webhook(verdict) };
}

export async function handleCapaWebhook(request: Request): Promise<Response> {
  if (request.method !== 'POST') return Response.json({ ok: false, error: 'use POST' }, { status: 405, headers: { Allow: 'POST' } });
  const raw = await readLimitedBody(request, MAX_WEBHOOK_BYTES);
  if (raw === null) {
    metrics.webhook('too_large');
    return Response.json({ ok: false, error: `body larger than ${MAX_WEBHOOK_BYTES} bytes` }, { status: 413 });
  }
  const s = await services();
  try {
    const r = await receiveWebhook(raw, request.headers, await intakeDeps());
    return Response.json(r.body, { status: r.status });
  } catch (err) {
    // The database refused the write: nothing was accepted, so Capa must retry (5xx).
    s.logger.error({ err: (err as Error).message }, 'webhook intake could not store a delivery');
    return Response.json({ ok: false, error: 'temporarily unable to store the delivery' }, { status: 503 });
  }
}
