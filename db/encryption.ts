import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * KYC detail payloads are encrypted at rest with AES-256-GCM. The stored form names its key id
 * so keys can rotate: `enc:v1:<keyId>:<iv b64>:<tag b64>:<ciphertext b64>`. Without a key
 * (local development) payloads are stored as plain JSON and say so (`keyId` null).
 */
export interface DataKey {
  id: string;
  key: Buffer;
}

/** Parses KYC_DETAILS_KEY: `[keyId:]<64 hex>`; several comma-separated keys, first one writes. */
export function parseDataKeys(value: string | undefined): DataKey[] {
  if (!value) return [];
  return value.split(',').map((part, i) => {
    const m = /^(?:([A-Za-z0-9_-]+):)?([0-9a-fA-F]{64})$/.exec(part.trim());
    if (!m) throw new Error('KYC_DETAILS_KEY: each key must be [keyId:]64 hex characters');
    return { id: m[1] ?? `k${i + 1}`, key: Buffer.from(m[2], 'hex') };
  });
}

export function encryptJson(value: unknown, key: DataKey | undefined): { payload: string; keyId: string | null } {
  const json = JSON.stringify(value);
  if (!key) return { payload: json, keyId: null };
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  const ct = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return { payload: `enc:v1:${key.id}:${iv.toString('base64')}:${tag.toString('base64')}:${ct.toString('base64')}`, keyId: key.id };
}

export function decryptJson<T = unknown>(payload: string, keys: DataKey[]): T {
  if (!payload.startsWith('enc:v1:')) return JSON.parse(payload) as T;
  const [, , keyId, ivB64, tagB64, ctB64] = payload.split(':');
  const key = keys.find((k) => k.id === keyId);
  if (!key) throw new Error(`no key with id ${keyId} to decrypt KYC details`);
  const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(ivB64, 'base64'));
  decipher.setAuthTag(Buffer.from(tagB64, 'base64'));
  const pt = Buffer.concat([decipher.update(Buffer.from(ctB64, 'base64')), decipher.final()]);
  return JSON.parse(pt.toString('utf8')) as T;
}
