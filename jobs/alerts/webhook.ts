import { createHmac, timingSafeEqual } from 'node:crypto';
import { ChannelError, type DeliveryReceipt } from '../notifications/channel.js';
import type { WebhookTarget } from './config.js';

/**
 * The alert webhook: a POST of the body, signed with HMAC-SHA256 under ALERTS_WEBHOOK_SECRET in
 * `X-KYC-Desk-Signature: sha256=<hex>`, so the receiver can tell it came from us and was not
 * altered. A 2xx is delivered; 408, 425, 429, 5xx and network failures are retried with backoff
 * (the send job's attempts); any other answer is final — retrying cannot change it.
 */
export const SIGNATURE_HEADER = 'X-KYC-Desk-Signature';
export const DELIVERY_HEADER = 'X-KYC-Desk-Delivery';
export const EVENT_HEADER = 'X-KYC-Desk-Event';
const TIMEOUT_MS = 10_000;

export function signAlertBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** The receiver's side of the check (for tests and integrators reading the code). */
export function verifyAlertSignature(secret: string, body: string, header: string | null | undefined): boolean {
  const want = Buffer.from(signAlertBody(secret, body));
  const given = Buffer.from(header ?? '');
  return given.length === want.length && timingSafeEqual(given, want);
}

const RETRYABLE = new Set([408, 425, 429]);

export async function postAlertWebhook(
  target: WebhookTarget,
  body: string,
  meta: { deliveryId: string; event: string },
  timeoutMs = TIMEOUT_MS,
): Promise<DeliveryReceipt> {
  let res: Response;
  try {
    res = await fetch(target.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'KYC-Desk-Alerts',
        [SIGNATURE_HEADER]: signAlertBody(target.secret, body),
        [DELIVERY_HEADER]: meta.deliveryId,
        [EVENT_HEADER]: meta.event,
      },
      body,
      // A redirect would re-send the signed body somewhere nobody configured.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    throw new ChannelError(`webhook unreachable: ${why}`, false, 'webhook-network');
  }
  const text = (await res.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
  if (res.status >= 200 && res.status < 300)
    return { providerMessageId: null, response: `HTTP ${res.status}${text ? ` ${text}` : ''}`.slice(0, 300) };
  const what = `webhook answered HTTP ${res.status}${text ? `: ${text}` : ''}`;
  if (RETRYABLE.has(res.status) || res.status >= 500) throw new ChannelError(what, false, `webhook-${res.status}`);
  throw new ChannelError(what, true, `webhook-${res.status}`);
}
