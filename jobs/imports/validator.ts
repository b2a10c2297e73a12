import { generateExternalUserId } from '../../db/repositories/users.js';
import { checkEmail, emailProblemValues } from '../../domain/email.js';
import { storeMessage, type StoredMessage } from '../../lib/stored-message.js';
import type { RawRow } from './parser.js';
import { rowProblem as problem } from './reasons.js';

/**
 * Row validation for the dry run. Pure except for `exists`, which the stager answers from the
 * users table in batches. The rules mirror what Capa would refuse (capa-api.md §2.1, §2.3), so a
 * row that passes here fails at Capa only for reasons we cannot see in advance.
 */

/** Why a row cannot be imported, one code per kind (the dry run counts rows by it; `imports:reason_labels.<code>` names it). */
export const REASON_CODES = [
  'missing_email',
  'bad_email',
  'bad_external_id',
  'unknown_type',
  'unsupported_country',
  'missing_country',
  'bad_send_link',
  'kyb_link',
  'alias_too_long',
  'duplicate_in_file',
  'exists',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export interface ValidRow {
  externalUserId: string;
  generatedId: boolean;
  email: string;
  type: 'INDIVIDUAL' | 'BUSINESS';
  alias: string | null;
  country: 'MX' | 'DO' | null;
  sendLink: boolean;
}

export interface CheckedRow {
  rowNo: number;
  line: number;
  /** Normalised values where they could be read; the file's text otherwise (for the error CSV). */
  externalUserId: string | null;
  generatedId: boolean;
  email: string | null;
  type: string | null;
  alias: string | null;
  country: string | null;
  sendLink: boolean;
  ok: boolean;
  reasonCode: ReasonCode | null;
  /** Every problem of the row, in order. */
  problems: StoredMessage[];
  /** The problems as stored (lib/stored-message.ts); null for a valid row. */
  reason: string | null;
}

// Same rule as the console's create form (app/schemas.ts), so ids look alike however created.
const EXTERNAL_ID_RE = /^[A-Za-z0-9._:-]{3,100}$/;
const YES = new Set(['yes', 'y', 'true', '1', 'si', 'sí']);
const NO = new Set(['no', 'n', 'false', '0']);

/** Tracks earlier rows' keys to flag duplicates within the file ("duplicate of row N"). */
export class DuplicateTracker {
  private readonly emails = new Map<string, number>();
  private readonly ids = new Map<string, number>();

  check(rowNo: number, email: string | null, externalUserId: string | null): StoredMessage | null {
    let msg: StoredMessage | null = null;
    if (externalUserId) {
      const first = this.ids.get(externalUserId);
      if (first !== undefined) msg = problem('duplicate_external_id', { row: first });
      else this.ids.set(externalUserId, rowNo);
    }
    if (email) {
      const first = this.emails.get(email);
      if (first !== undefined) msg ??= problem('duplicate_email', { row: first });
      else this.emails.set(email, rowNo);
    }
    return msg;
  }
}

/** Validates one row on its own (everything but "already exists here"). */
export function checkRow(raw: RawRow, dups: DuplicateTracker): CheckedRow {
  const v = raw.values;
  const problems: Array<[ReasonCode, StoredMessage]> = [];

  const emailText = v.email.trim();
  let email: string | null = emailText || null;
  if (!emailText) problems.push(['missing_email', problem('missing_email')]);
  else {
    // The one address rule (domain/email.ts): what passes here is what the mail channel delivers.
    const checked = checkEmail(emailText);
    if (checked.ok) email = checked.email;
    else problems.push(['bad_email', problem('bad_email', { value: clip(emailText), ...emailProblemValues(checked) })]);
  }

  const idText = v.externalUserId.trim();
  let externalUserId: string | null = idText || null;
  let generatedId = false;
  if (idText && !EXTERNAL_ID_RE.test(idText)) {
    problems.push(['bad_external_id', problem('bad_external_id', { value: clip(idText) })]);
  }

  const typeText = v.type.trim().toUpperCase();
  let type: string | null = typeText || 'INDIVIDUAL';
  if (typeText && typeText !== 'INDIVIDUAL' && typeText !== 'BUSINESS') {
    problems.push(['unknown_type', problem('unknown_type', { value: clip(v.type.trim()) })]);
    type = v.type.trim();
  }

  const sendText = v.sendLink.trim().toLowerCase();
  let sendLink = true;
  if (sendText) {
    if (YES.has(sendText)) sendLink = true;
    else if (NO.has(sendText)) sendLink = false;
    else problems.push(['bad_send_link', problem('bad_send_link', { value: clip(v.sendLink.trim()) })]);
  }

  const countryText = v.country.trim().toUpperCase();
  let country: string | null = countryText || null;
  if (countryText && countryText !== 'MX' && countryText !== 'DO') {
    problems.push(['unsupported_country', problem('unsupported_country', { value: clip(v.country.trim()) })]);
    country = v.country.trim();
  } else if (!countryText && sendLink) {
    problems.push(['missing_country', problem('missing_country')]);
  }
  if (sendLink && type === 'BUSINESS') {
    problems.push(['kyb_link', problem('kyb_link')]);
  }

  const aliasText = v.alias.trim();
  if (aliasText.length > 100) problems.push(['alias_too_long', problem('alias_too_long', { length: aliasText.length, max: 100 })]);

  const dup = dups.check(
    raw.rowNo,
    problems.some(([c]) => c === 'bad_email' || c === 'missing_email') ? null : email,
    idText && !problems.some(([c]) => c === 'bad_external_id') ? idText : null,
  );
  if (dup) problems.push(['duplicate_in_file', dup]);

  if (!idText && problems.length === 0) {
    externalUserId = generateExternalUserId();
    generatedId = true;
  }
  return {
    rowNo: raw.rowNo,
    line: raw.line,
    externalUserId,
    generatedId,
    email,
    type,
    alias: aliasText || null,
    country,
    sendLink,
    ok: problems.length === 0,
    reasonCode: problems[0]?.[0] ?? null,
    problems: problems.map(([, m]) => m),
    reason: problems.length ? storeMessage(problems.map(([, m]) => m)) : null,
  };
}

/** Marks rows whose customer is already in our database (by externalUserId or e-mail). */
export function markExisting(rows: CheckedRow[], existing: { byExternalId: Map<string, string>; byEmail: Map<string, string> }): void {
  for (const r of rows) {
    if (!r.ok) continue;
    const hit =
      (!r.generatedId && r.externalUserId ? existing.byExternalId.get(r.externalUserId) : undefined) ??
      (r.email ? existing.byEmail.get(r.email) : undefined);
    if (hit) {
      r.ok = false;
      r.reasonCode = 'exists';
      r.problems = [problem('exists', { customer: hit })];
      r.reason = storeMessage(r.problems);
    }
  }
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}
