import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Capa webhook signatures (capa-api.md §4.5): header `capa-signature` carries the lowercase hex
 * HMAC-SHA256 of the body, keyed with the partner's WEBHOOK_SECRET. No prefix, no timestamp.
 */
export const SIGNATURE_HEADER = 'capa-signature';

export function signBody(body: string | Uint8Array, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export type VerifyResult =
  { ok: true; secretIndex: number; variant: 'raw' | 'restringified' } | { ok: false; reason: 'missing' | 'malformed' | 'mismatch' };

const HEX_64 = /^[0-9a-fA-F]{64}$/;

/**
 * Verify a webhook against every configured secret (several during a rotation).
 *
 * Variant 'raw' signs the exact received bytes. Capa's own sample verifier instead signs
 * JSON.stringify(JSON.parse(body)); the two agree whenever Capa sends compact JSON.stringify
 * output, so the 'restringified' variant is only a fallback for a re-formatted body.
 */
export function verifySignature(rawBody: Uint8Array | Buffer, header: string | null | undefined, secrets: string[]): VerifyResult {
  if (header === undefined || header === null || header === '') return { ok: false, reason: 'missing' };
  // Checked before decoding: Buffer.from(x, 'hex') silently stops at the first non-hex char, and
  // timingSafeEqual throws on unequal lengths — so only exactly 32 bytes may reach the compare.
  if (!HEX_64.test(header)) return { ok: false, reason: 'malformed' };
  const given = Buffer.from(header, 'hex');
  const raw = Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);

  const matchIndex = (message: Buffer | string): number => {
    let found = -1;
    // Compare against every secret (no early exit) so timing does not reveal which one matched.
    secrets.forEach((secret, i) => {
      const expected = createHmac('sha256', secret).update(message).digest();
      if (timingSafeEqual(expected, given) && found === -1) found = i;
    });
    return found;
  };

  const rawIndex = matchIndex(raw);
  if (rawIndex !== -1) return { ok: true, secretIndex: rawIndex, variant: 'raw' };

  let restringified: string | undefined;
  try {
    restringified = JSON.stringify(JSON.parse(raw.toString('utf8')));
  } catch {
    restringified = undefined; // not JSON: there is no second variant to try
  }
  if (restringified !== undefined && restringified !== raw.toString('utf8')) {
    const index = matchIndex(restringified);
    if (index !== -1) return { ok: true, secretIndex: index, variant: 'restringified' };
  }
  return { ok: false, reason: 'mismatch' };
}
