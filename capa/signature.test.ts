import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signBody, verifySignature } from './signature';

// Reference vector computed here from the documented algorithm (capa-api.md §4.5):
// hex(HMAC_SHA256(key = utf8(secret), message = JSON.stringify(payload))).
const secret = 'whsec-test-0123456789';
const payload = { type: 'KYC', event: 'VERIFIED_USER', externalUserId: 'dash-usr-000123' };
const body = JSON.stringify(payload);
const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex');
const raw = Buffer.from(body, 'utf8');

describe('signBody', () => {
  it('produces lowercase hex HMAC-SHA256 of the body', () => {
    expect(signBody(body, secret)).toBe(expected);
    expect(signBody(raw, secret)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
  });

  it('signs UTF-8 bytes (non-ASCII alias survives)', () => {
    const b = JSON.stringify({ type: 'KYC', event: 'CREATED_KYC', externalUserId: 'ñandú-Ω' });
    const want = createHmac('sha256', secret).update(Buffer.from(b, 'utf8')).digest('hex');
    expect(signBody(b, secret)).toBe(want);
    expect(signBody(new TextEncoder().encode(b), secret)).toBe(want);
  });
});

describe('verifySignature', () => {
  it('accepts the documented signature over the raw bytes', () => {
    expect(verifySignature(raw, expected, [secret])).toEqual({ ok: true, secretIndex: 0, variant: 'raw' });
  });

  it('accepts an uppercase hex header (bytes are compared, not strings)', () => {
    expect(verifySignature(raw, expected.toUpperCase(), [secret])).toMatchObject({ ok: true, variant: 'raw' });
  });

  it('accepts a Uint8Array view into a larger buffer', () => {
    const big = Buffer.concat([Buffer.from('xxxx'), raw, Buffer.from('yyyy')]);
    const view = new Uint8Array(big.buffer, big.byteOffset + 4, raw.length);
    expect(verifySignature(view, expected, [secret])).toMatchObject({ ok: true });
  });

  it('rejects a wrong secret', () => {
    expect(verifySignature(raw, expected, ['some-other-secret'])).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('rejects a tampered body', () => {
    const tampered = Buffer.from(body.replace('VERIFIED_USER', 'REJECTED_KYC'));
    expect(verifySignature(tampered, expected, [secret])).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('rejects a missing header', () => {
    expect(verifySignature(raw, undefined, [secret])).toEqual({ ok: false, reason: 'missing' });
    expect(verifySignature(raw, null, [secret])).toEqual({ ok: false, reason: 'missing' });
    expect(verifySignature(raw, '', [secret])).toEqual({ ok: false, reason: 'missing' });
  });

  it('rejects short, overlong, non-hex and prefixed headers as malformed', () => {
    expect(verifySignature(raw, expected.slice(0, 63), [secret])).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature(raw, expected + '0', [secret])).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature(raw, expected + expected, [secret])).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature(raw, 'g' + expected.slice(1), [secret])).toEqual({ ok: false, reason: 'malformed' });
    // A valid-hex prefix followed by junk must not be truncated into a "valid" 32-byte buffer.
    expect(verifySignature(raw, expected.slice(0, 62) + 'zz', [secret])).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature(raw, `sha256=${expected}`, [secret])).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature(raw, ` ${expected}`, [secret])).toEqual({ ok: false, reason: 'malformed' });
  });

  it('accepts the second secret during a rotation and reports which one matched', () => {
    expect(verifySignature(raw, expected, ['new-secret-not-yet-used', secret])).toEqual({ ok: true, secretIndex: 1, variant: 'raw' });
  });

  it('rejects when no secret is configured', () => {
    expect(verifySignature(raw, expected, [])).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('falls back to JSON.stringify(JSON.parse(raw)) for a re-formatted body', () => {
    const pretty = Buffer.from(JSON.stringify(payload, null, 2));
    expect(pretty.equals(raw)).toBe(false);
    expect(verifySignature(pretty, expected, [secret])).toEqual({ ok: true, secretIndex: 0, variant: 'restringified' });
    // …and the fallback still needs the right secret.
    expect(verifySignature(pretty, expected, ['wrong-secret-value'])).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('has no fallback for a body that is not JSON', () => {
    const notJson = Buffer.from('not json at all');
    const sig = createHmac('sha256', secret).update('"not json at all"').digest('hex');
    expect(verifySignature(notJson, sig, [secret])).toEqual({ ok: false, reason: 'mismatch' });
  });
});
