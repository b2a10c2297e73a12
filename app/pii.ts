/**
 * Masking helpers for personal data shown to roles without the right to see it (viewers).
 * Pure and shared by every screen; masking happens on the server (loaders mask before the data
 * leaves), these helpers only decide what the masked form looks like.
 */
const DOT = '•';

export function maskEmail(email: string | null | undefined): string {
  if (!email) return '';
  const at = email.lastIndexOf('@');
  if (at < 1) return DOT.repeat(6);
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  return `${local[0]}${DOT.repeat(Math.max(2, Math.min(6, local.length - 1)))}@${domain}`;
}

/** Document numbers, tax ids, phone numbers: keep the last 2 characters. */
export function maskDocument(value: string | null | undefined, keep = 2): string {
  if (!value) return '';
  const v = String(value);
  if (v.length <= keep) return DOT.repeat(4);
  return `${DOT.repeat(Math.min(8, v.length - keep))}${v.slice(-keep)}`;
}

export const maskTaxId = (v: string | null | undefined) => maskDocument(v, 2);
export const maskPhone = (v: string | null | undefined) => maskDocument(v, 2);

/** Birth dates: only the year stays. */
export function maskDate(value: string | null | undefined): string {
  if (!value) return '';
  const m = /^(\d{4})/.exec(String(value));
  return m ? `${m[1]}-${DOT}${DOT}-${DOT}${DOT}` : `${DOT}${DOT}${DOT}${DOT}`;
}

export function maskAddress(value: string | null | undefined): string {
  return value ? DOT.repeat(6) : '';
}

/**
 * What stands for a link a viewer may not have. Pages that show it word it in the reader's
 * language (they compare with this constant); elsewhere it reads as it is.
 */
export const HIDDEN_FOR_ROLE = '(hidden for your role)';

/** Media links (document photos, selfies) are never sent to viewers. */
export function maskUrl(value: string | null | undefined): string {
  return value ? HIDDEN_FOR_ROLE : '';
}

export function maskName(value: string | null | undefined): string {
  if (!value) return '';
  return String(value)
    .split(/\s+/)
    .map((w) => (w ? `${w[0]}${DOT.repeat(Math.min(4, Math.max(1, w.length - 1)))}` : w))
    .join(' ');
}

/** Keys in Capa's KYC details that hold personal data, and how each is masked. */
export const PII_FIELD_MASKS: Record<string, (v: string) => string> = {
  idNumber: maskDocument,
  documentNumber: maskDocument,
  taxId: maskTaxId,
  phoneNumber: maskPhone,
  birthDate: maskDate,
  dateOfBirth: maskDate,
  fullAddress: maskAddress,
  address: maskAddress,
  firstName: maskName,
  middleName: maskName,
  lastName: maskName,
  secondLastName: maskName,
  fullName: maskName,
  email: maskEmail,
  frontIdImageUrl: maskUrl,
  backIdImageUrl: maskUrl,
  selfieImageUrl: maskUrl,
  selfieVideoUrl: maskUrl,
  idExpiryDate: maskDate,
  idIssueDate: maskDate,
};

/** Deep-masks a JSON value (KYC details): known PII keys masked, any URL string hidden. */
export function maskDeep(value: unknown, key?: string): unknown {
  if (value === null || value === undefined) return value;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, key));
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, maskDeep(v, k)]));
  }
  const mask = key ? PII_FIELD_MASKS[key] : undefined;
  if (mask) return typeof value === 'object' ? maskAddress('x') : mask(String(value));
  if (typeof value === 'string' && /^https?:\/\//i.test(value)) return maskUrl(value);
  return value;
}
