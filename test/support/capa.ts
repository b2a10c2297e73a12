import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Test helpers for capa/ tests: a real webhook receiver and deadline-based polling. */

export interface ReceivedRequest {
  n: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: string;
  json: unknown;
}

export type Responder = (
  req: ReceivedRequest,
) => { status: number; body?: string; delayMs?: number } | Promise<{ status: number; body?: string; delayMs?: number }>;

export interface Receiver {
  url: string;
  received: ReceivedRequest[];
  respond(fn: Responder): void;
  close(): Promise<void>;
}

export async function startReceiver(responder: Responder = () => ({ status: 200, body: '{"ok":true}' })): Promise<Receiver> {
  let current = responder;
  const received: ReceivedRequest[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const body = raw.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    const r: ReceivedRequest = {
      n: received.length + 1,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      raw,
      body,
      json,
    };
    received.push(r);
    const out = await current(r);
    if (out.delayMs) await new Promise((ok) => setTimeout(ok, out.delayMs));
    if (res.destroyed) return;
    res.writeHead(out.status, { 'content-type': 'application/json' });
    res.end(out.body ?? '');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/capa`,
    received,
    respond(fn) {
      current = fn;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

/** Poll `check` until it returns a truthy value or the deadline passes (then throw with `what`). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5_000, intervalMs = 10): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await check();
    if (last) return last as NonNullable<T>;
    if (Date.now() > until) throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
