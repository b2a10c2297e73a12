import { describe, expect, it } from 'vitest';
import { capaErrorCode, CapaError, type CapaErrorCode } from '../capa/client.js';
import { AUDIT_ACTION_GROUPS, AUDIT_ACTION_LIST } from '../db/repositories/audit-actions.js';
import type { Message } from './action-result';
import { chainReason } from './audit.server';
import { getFixedT, i18nInstance } from './i18n';
import { reasonParts } from './notifications.server';
import { storedErrorMessage } from './plain-errors.server';
import { evidenceParts, runErrorMessage } from './refresh.server';
import { readMessages } from '../lib/stored-message.js';
import { retentionReason } from '../jobs/retention.js';

/**
 * What the jobs and repositories store as English text (a message's failure, a drift's evidence, a
 * job's failed reason, a chain break) is read back as codes the reader's language words; every
 * code those readers can produce has words in both catalogues.
 */
const en = getFixedT('en');
const es = getFixedT('es');
const words = (parts: Message[], t = en) => parts.map((m) => t(m.code, m.values ?? {})).join(': ');
const exists = (code: string) => (['es', 'en'] as const).every((l) => i18nInstance(l).exists(code));

describe('a message ledger reason', () => {
  it('is read back as a chain, each part worded in the reader’s language', () => {
    const parts = reasonParts('programme stopped: message not delivered: gave up after 3 attempt(s): SMTP 550 at RCPT TO: 5.1.1 <a@b.mx>');
    expect(parts.map((p) => p.code)).toEqual([
      'notifications:reasons.programme_stopped',
      'notifications:reasons.not_delivered',
      'notifications:reasons.gave_up',
      'notifications:reasons.smtp_refused',
    ]);
    expect(words(parts)).toBe(
      'follow-ups stopped: a message was not delivered: gave up after 3 attempts: the mail server refused it (SMTP 550): 5.1.1 <a@b.mx>',
    );
    expect(words(parts, es)).toBe(
      'se detuvieron los seguimientos: un mensaje no se entregó: se abandonó tras 3 intentos: el servidor de correo lo rechazó (SMTP 550): 5.1.1 <a@b.mx>',
    );
    expect(words(reasonParts('customer is already IN_PROGRESS'), es)).toBe('el cliente ya está en En proceso');
    expect(words(reasonParts('gave up after 1 attempt(s): SMTP unreachable or failed: connect ECONNREFUSED'))).toBe(
      'gave up after 1 attempt: the mail server could not be reached: connect ECONNREFUSED',
    );
    // Text nobody classified is shown as it was recorded, never dropped.
    expect(reasonParts('something new')).toEqual([{ code: 'notifications:reasons.other', values: { text: 'something new' } }]);
    expect(reasonParts('')).toEqual([]);
  });

  it('every stored reason the jobs write has words', () => {
    const written = [
      'customer not found',
      'programme stopped: stopped',
      'customer is already VERIFIED',
      'its link was superseded by a newer one',
      'no channel sms',
      'no channel',
      'no e-mail address',
      'not a valid e-mail address: x@y (it has no dot)',
      'could not render: boom',
      'an earlier attempt was interrupted while sending; delivery unknown — resend by hand if the customer did not receive it',
      'SMTP 421 at RCPT TO (temporary): try later',
      'refused address: x',
      'recipient refused: x',
      'SMTP authentication failed: x',
      'attempt 2: SMTP unreachable or failed: x',
      'e-mail is not configured: set SMTP_URL',
      'SMS is not available yet',
      'customer started KYC',
      'customer verified',
      'customer submitted KYC (in review)',
      'operator',
      'all follow-ups sent',
      'the customer has no country (MX or DO) to generate a KYC link for',
      'no KYC link could be generated: {"state":"failed"}',
      'no KYC link was generated within a day (is the customer in Capa?)',
      'message not delivered: failed',
      'the verification link must be http(s), not ftp:',
      'no template for kyc_link in fr',
      'the alert this message is about no longer exists',
      'no alert webhook is configured any more (ALERTS_WEBHOOK_URL)',
      'webhook unreachable: ECONNREFUSED',
      'webhook answered HTTP 500: oops',
      'webhook answered HTTP 410',
    ];
    for (const text of written) {
      const parts = reasonParts(text);
      expect(
        parts.map((p) => p.code),
        text,
      ).not.toContain('notifications:reasons.other');
      for (const p of parts) expect(exists(p.code), p.code).toBe(true);
    }
  });
});

describe('a drift’s evidence and a refresh run’s failure', () => {
  it('are worded per missed event, unknown parts as recorded', () => {
    const parts = evidenceParts(
      'VERIFIED_USER: never received (dropped by Capa after its retries, or not sent yet); CREATED_KYC: received (#7, processed, noop) — likely late or out of order; REJECTED_KYC: received only with a bad signature (#9, mismatch); REVIEW_NEEDED_KYC: received (#11) but not processed yet when polled; ODD: ???',
    )!;
    expect(parts.map((p) => p.code)).toEqual([
      'drift:evidence.never_received',
      'drift:evidence.late_effect',
      'drift:evidence.bad_signature',
      'drift:evidence.not_processed',
      'drift:evidence.other',
    ]);
    expect(es(parts[1]!.code, parts[1]!.values)).toBe(
      'CREATED_KYC: llegó (n.º 7, procesada, sin cambios); probablemente tarde o fuera de orden',
    );
    expect(en(parts[2]!.code, parts[2]!.values)).toBe('REJECTED_KYC: received only with a bad signature (#9, mismatch)');
    expect(evidenceParts(null)).toBeNull();
    expect(runErrorMessage('2 customer(s) got no answer within the time allowed')).toEqual({
      code: 'refresh:run.no_answer',
      values: { count: 2 },
    });
    expect(es('refresh:run.no_answer', { count: 2 })).toBe('2 clientes no obtuvieron respuesta en el tiempo permitido');
    expect(runErrorMessage('connect ECONNREFUSED 127.0.0.1:6379')).toEqual({ code: 'queues:job_errors.unreachable' });
  });
});

describe('catalogue coverage of the codes facades produce', () => {
  it('every Capa failure has words (and the variants for a job that has failed for good)', () => {
    const codes: CapaErrorCode[] = [
      'unexpected',
      'timeout',
      'invalid_response',
      'rate_limited',
      'rate_limited_for',
      'internal',
      'other_partner',
      'api_key',
      'unauthorized',
      'partner_flow',
      'already_exists',
      'already_exists_after_retry',
      'refused',
      'no_notification',
      'no_notification_log',
      'no_kyc_yet',
      'unknown_user',
      'endpoint_not_found',
      'kyb_only',
      'invalid_input',
      'invalid_input_details',
      'http',
    ];
    for (const c of [...codes, 'timeout_gave_up', 'rate_limited_gave_up']) expect(exists(`capa:errors.${c}`), c).toBe(true);
    // The list above is every code: an HTTP 418 is the catch-all, and it is in the list.
    const teapot = new CapaError({ status: 418, code: 'TEAPOT', capaMessage: 'x', kind: 'http', retryable: false, op: 'x' });
    expect(codes).toContain(capaErrorCode(teapot).code);
    expect(storedErrorMessage('Capa getKycDetails failed (timeout TIMEOUT): x', { final: true }).code).toBe('capa:errors.timeout_gave_up');
  });

  it('every audit action and group has a label in both languages', () => {
    for (const a of AUDIT_ACTION_LIST) expect(exists(`audit:actions.${a}`), a).toBe(true);
    for (const g of AUDIT_ACTION_GROUPS) expect(exists(`audit:groups.${g}`), g).toBe(true);
    expect(es('audit:actions.notification.programme.stop')).toBe('Seguimientos detenidos');
  });

  it('a broken chain’s reason is a code', () => {
    expect(chainReason('a row is missing before this one (previous hash does not match)').reasonCode).toBe('missing_row');
    expect(chainReason('row content does not match its hash').reasonCode).toBe('content_changed');
    expect(es('audit:chain_reasons.content_changed')).toBe('el contenido del registro no coincide con su hash');
  });
});

describe('a retention erasure’s reason', () => {
  it('is a code with the state and years, worded in both languages', () => {
    const [m] = readMessages(retentionReason('REJECTED', 5)) ?? [];
    expect(m?.code).toBe('evidence:retention.reason');
    expect(exists('evidence:retention.reason_other')).toBe(true);
    expect(en(m!.code, m!.values)).toBe('Retention policy: Rejected after 5 years');
    expect(es(m!.code, m!.values)).toBe('Plazo de conservación: Rechazado después de 5 años');
    const [one] = readMessages(retentionReason('LINK_ISSUED', 1)) ?? [];
    expect(en(one!.code, one!.values)).toBe('Retention policy: Link issued after 1 year');
  });
});
