import { CapaError, capaErrorCode, capaErrorCodeOfText, type CapaErrorCode } from '../capa/client.js';
import type { Message } from './action-result';

/**
 * Failures in words an operator can act on, as messages the UI words in the reader's language:
 * a Capa call that failed now, and an error stored as text (a job's failed reason, a webhook's
 * processing error), which the jobs write in English and old rows keep.
 */

/** A Capa failure (catalogue `capa:errors.<code>`). */
export function capaErrorMessage(err: unknown): Message {
  const { code, values } = capaErrorCode(err);
  return { code: `capa:errors.${code}`, values };
}

// For a job that has failed for good, "the request will be retried" is no longer true.
const GAVE_UP: Partial<Record<CapaErrorCode, string>> = {
  timeout: 'capa:errors.timeout_gave_up',
  rate_limited: 'capa:errors.rate_limited_gave_up',
  rate_limited_for: 'capa:errors.rate_limited_gave_up',
};

const JOB_CAPA = /^Capa (\w+) failed \((?:HTTP (\d{3})|(timeout|network)) ([A-Z0-9_]+)\): ([\s\S]*)$/;

/**
 * A stored error as a message (catalogue `queues:job_errors.*` or `capa:errors.*`). Text nobody
 * classified is shown as it was recorded (its first line): `queues:job_errors.other`.
 */
export function storedErrorMessage(reason: string | null | undefined, opts: { final?: boolean } = {}): Message {
  const r = (reason ?? '').trim();
  const job = (key: string, values?: Message['values']): Message => ({ code: `queues:job_errors.${key}`, ...(values ? { values } : {}) });
  if (!r) return job('no_reason');
  const capaCode = (code: CapaErrorCode, values: Record<string, string | number>): Message => ({
    code: (opts.final && GAVE_UP[code]) || `capa:errors.${code}`,
    values,
  });
  // A Capa call that failed inside a job: CapaError's own message.
  const capa = JOB_CAPA.exec(r);
  if (capa) {
    const [, op, status, kind, code, msg] = capa;
    const classified = capaErrorCode(
      new CapaError({
        status: status ? Number(status) : null,
        code: code!,
        capaMessage: msg!,
        op: op!,
        kind: status ? 'http' : (kind as 'timeout' | 'network'),
        retryable: false,
      }),
    );
    return capaCode(classified.code, classified.values);
  }
  // describeCapaError's English, thrown as a job's final failure.
  const worded = capaErrorCodeOfText(r);
  if (worded) return capaCode(worded.code, worded.values);
  if (/^invalid payload for/.test(r)) return job('invalid_payload');
  if (/^no handler for job/.test(r)) return job('no_handler');
  if (/stalled more than allowable limit/i.test(r)) return job('stalled');
  if (/SQLITE_BUSY|database is locked/i.test(r)) return job('db_busy');
  const unknownCustomer = /^no customer with externalUserId (.+)$/.exec(r);
  if (unknownCustomer) return job('unknown_customer', { externalUserId: unknownCustomer[1]! });
  const limited = /^rate-limited by Capa for (\d+) ms$/.exec(r);
  if (limited) return { code: 'capa:errors.rate_limited_for', values: { seconds: Math.max(1, Math.ceil(Number(limited[1]) / 1000)) } };
  if (/ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN/.test(r)) return job('unreachable');
  if (/timed out|timeout/i.test(r)) return job('took_too_long');
  const first = r.split('\n')[0]!;
  return job('other', { text: first.length > 240 ? `${first.slice(0, 240)}…` : first });
}
