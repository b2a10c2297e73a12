/**
 * Words for a person, kept as data where they are stored (an import row's reason, an import's
 * status reason, a customer's Capa error, a job's failure): a catalogue key
 * (`<namespace>:<key>`) and the values it interpolates, so the page words them in the reader's
 * language when it is read, not in the writer's when it was written. Values are flat; a value that
 * is itself a code (a Capa error, an e-mail problem) is worded by the catalogue entry (nesting).
 *
 * Stored as JSON text. Text that is not a stored message (written before messages were stored
 * this way, or raw text from elsewhere such as an SMTP server's answer) reads back as null, and
 * callers show it as it is.
 */
export type StoredValues = Record<string, string | number>;
export interface StoredMessage {
  code: string;
  values?: StoredValues;
}

const CODE = /^[a-z][a-z0-9-]*:[A-Za-z0-9_.]+$/;

export function storedMessage(code: string, values?: StoredValues): StoredMessage {
  return values && Object.keys(values).length ? { code, values } : { code };
}

/** One message, or several (a CSV row with more than one problem), as the text to store. */
export function storeMessage(m: StoredMessage | StoredMessage[]): string {
  return JSON.stringify(m);
}

function isMessage(v: unknown): v is StoredMessage {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.code !== 'string' || !CODE.test(o.code)) return false;
  if (o.values === undefined) return true;
  if (typeof o.values !== 'object' || o.values === null || Array.isArray(o.values)) return false;
  return Object.values(o.values).every((x) => typeof x === 'string' || typeof x === 'number');
}

/** The stored messages in `text` (always a list), or null when it is plain text. */
export function readMessages(text: string | null | undefined): StoredMessage[] | null {
  const s = text?.trim();
  if (!s || (s[0] !== '{' && s[0] !== '[')) return null;
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return null;
  }
  if (isMessage(v)) return [v];
  if (Array.isArray(v) && v.length > 0 && v.every(isMessage)) return v;
  return null;
}
