import type {
  CreateUserInput,
  CreateUserResult,
  GenerateKycLinkOptions,
  GenerateKycLinkResult,
  KycDetails,
  ListWebhookNotificationsQuery,
  WebhookNotificationDetail,
  WebhookNotificationList,
  WebhookSettings,
} from './types';

/**
 * Typed client for Capa's partner API v2 (capa-api.md). The one place that knows Capa's wire
 * format: paths, the `partner-api-key` header, the two success envelopes and the error body.
 */

export type CapaOp =
  | 'createUser'
  | 'generateKycLink'
  | 'getKycDetails'
  | 'setWebhookSettings'
  | 'listWebhookNotifications'
  | 'getWebhookNotification'
  | 'retryWebhookNotification';

export interface CapaCallInfo {
  op: string;
  method: string;
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  ms: number;
  outcome: 'ok' | 'http_error' | 'network_error' | 'timeout';
  /** 1 for the first attempt. */
  attempt: number;
}

export interface CapaClientOptions {
  /** e.g. https://staging-api.capa.fi — configuration, never a constant. */
  baseUrl: string;
  apiKey: string;
  /** Per attempt, covering headers and body. */
  timeoutMs?: number;
  /** Retries after the first attempt (so up to maxRetries + 1 calls). */
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A 429 asking us to wait longer than this is thrown at once instead of slept on. */
  maxRetryAfterMs?: number;
  fetch?: typeof globalThis.fetch;
  /** Called once per attempt; for metrics and logs (never receives bodies or PII). */
  onCall?: (info: CapaCallInfo) => void;
}

export type CapaErrorKind = 'http' | 'network' | 'timeout';

export class CapaError extends Error {
  readonly status: number | null;
  readonly code: string;
  /** Capa's own message (or ours for network/timeout). */
  readonly capaMessage: string;
  readonly kind: CapaErrorKind;
  /** Whether trying again later can help (network, timeout, 5xx, 429). */
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  /** Parsed error body, kept for logs; may contain what we sent back, so redact before logging. */
  readonly body?: unknown;
  readonly op: string;
  /**
   * How many attempts were made. > 1 matters for creates: an earlier attempt that timed out may
   * have succeeded at Capa, so a 409 CONFLICT on a later attempt can be our own user.
   */
  attempts: number;

  constructor(init: {
    status: number | null;
    code: string;
    capaMessage: string;
    kind: CapaErrorKind;
    retryable: boolean;
    retryAfterMs?: number;
    body?: unknown;
    op: string;
    attempts?: number;
    cause?: unknown;
  }) {
    const where = init.status === null ? init.kind : `HTTP ${init.status}`;
    super(`Capa ${init.op} failed (${where} ${init.code}): ${init.capaMessage}`, init.cause ? { cause: init.cause } : undefined);
    this.name = 'CapaError';
    this.status = init.status;
    this.code = init.code;
    this.capaMessage = init.capaMessage;
    this.kind = init.kind;
    this.retryable = init.retryable;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.body !== undefined) this.body = init.body;
    this.op = init.op;
    this.attempts = init.attempts ?? 1;
  }
}

export function isCapaError(err: unknown): err is CapaError {
  return err instanceof CapaError;
}

const API = '/api/partner/v2';

type AttemptResult = { ok: true; status: number; body: unknown } | { ok: false; error: CapaError };

export class CapaClient {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly onCall?: (info: CapaCallInfo) => void;

  constructor(opts: CapaClientOptions) {
    if (!opts.baseUrl) throw new Error('CapaClient: baseUrl is required');
    if (!opts.apiKey) throw new Error('CapaClient: apiKey is required');
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.maxRetries = Math.max(0, opts.maxRetries ?? 3);
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 5_000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 30_000;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.onCall = opts.onCall;
  }

  /** POST /users → 201 `{success, data: {userId}}`. */
  async createUser(input: CreateUserInput): Promise<CreateUserResult> {
    const body: Record<string, unknown> = { type: input.type, email: input.email, externalUserId: input.externalUserId };
    if (input.alias !== undefined) body.alias = input.alias;
    const data = await this.call('createUser', 'POST', `${API}/users`, body);
    return { userId: requireString(data, 'userId', 'createUser') };
  }

  /** POST /users/{userId}/kyc/verification-link → 201 `{success, data: {kycLink}}`. */
  async generateKycLink(userId: string, opts: GenerateKycLinkOptions): Promise<GenerateKycLinkResult> {
    const body: Record<string, unknown> = { country: opts.country };
    if (opts.partnerRedirectUri !== undefined) body.partnerRedirectUri = opts.partnerRedirectUri;
    const data = await this.call('generateKycLink', 'POST', `${API}/users/${seg(userId)}/kyc/verification-link`, body);
    return { kycLink: requireString(data, 'kycLink', 'generateKycLink') };
  }

  /**
   * GET /kyc/details?userId= → `{status:"ok", data}`. Returns null only when Capa says the user
   * has no KYC verification yet (404 NOT_FOUND_ERROR about the verification). An unknown user is
   * also 404 NOT_FOUND_ERROR but with a "User was not found" message — that one is thrown.
   */
  async getKycDetails(userId: string): Promise<KycDetails | null> {
    try {
      const data = await this.call('getKycDetails', 'GET', `${API}/kyc/details?userId=${encodeURIComponent(userId)}`);
      return requireObject(data, 'getKycDetails') as KycDetails;
    } catch (err) {
      if (err instanceof CapaError && isNoKycYet(err)) return null;
      throw err;
    }
  }

  /** PUT /webhook-settings; `null` switches delivery off. */
  async setWebhookSettings(url: string | null): Promise<WebhookSettings> {
    const data = await this.call('setWebhookSettings', 'PUT', `${API}/webhook-settings`, { url });
    const o = requireObject(data, 'setWebhookSettings');
    requireString(o, 'id', 'setWebhookSettings');
    return o as unknown as WebhookSettings;
  }

  /**
   * GET /webhook-notifications. Newer than the rest of the API (2026-04-19); an environment
   * without it answers 404 — describeCapaError says so in words.
   */
  async listWebhookNotifications(query: ListWebhookNotificationsQuery = {}): Promise<WebhookNotificationList> {
    const qs = new URLSearchParams();
    if (query.status !== undefined) qs.set('status', query.status);
    if (query.skip !== undefined) qs.set('skip', String(query.skip));
    if (query.limit !== undefined) qs.set('limit', String(query.limit));
    const q = qs.toString();
    const data = await this.call('listWebhookNotifications', 'GET', `${API}/webhook-notifications${q ? `?${q}` : ''}`);
    const o = requireObject(data, 'listWebhookNotifications');
    if (!Array.isArray(o.data)) throw invalidResponse('listWebhookNotifications', 'data is not an array', data);
    return {
      count: typeof o.count === 'number' ? o.count : o.data.length,
      total: typeof o.total === 'number' ? o.total : o.data.length,
      data: o.data as WebhookNotificationList['data'],
    };
  }

  async getWebhookNotification(id: string): Promise<WebhookNotificationDetail> {
    const data = await this.call('getWebhookNotification', 'GET', `${API}/webhook-notifications/${seg(id)}`);
    return requireObject(data, 'getWebhookNotification') as unknown as WebhookNotificationDetail;
  }

  /**
   * POST /webhook-notifications/{id}/retry. Only for FAILED notifications, max 3 per notification,
   * 10 per partner per minute. The response body is undocumented: the sandbox returns the
   * notification detail; null means Capa answered 2xx without an object (re-read it if needed).
   */
  async retryWebhookNotification(id: string): Promise<WebhookNotificationDetail | null> {
    const data = await this.call('retryWebhookNotification', 'POST', `${API}/webhook-notifications/${seg(id)}/retry`);
    return isRecord(data) ? (data as unknown as WebhookNotificationDetail) : null;
  }

  // -------------------------------------------------------------------------------------------

  private async call(op: CapaOp, method: string, path: string, body?: unknown): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.attemptOnce(op, method, path, body, attempt);
      if (result.ok) return unwrap(result.body, op, result.status);
      const err = result.error;
      err.attempts = attempt;
      if (!err.retryable || attempt > this.maxRetries) throw err;
      let delayMs: number;
      if (err.status === 429 && err.retryAfterMs !== undefined) {
        // Capa told us when; waiting longer than we are willing to block a caller is the job
        // layer's business (it can re-schedule with err.retryAfterMs).
        if (err.retryAfterMs > this.maxRetryAfterMs) throw err;
        delayMs = err.retryAfterMs;
      } else {
        // Exponential backoff with full jitter: spreads retries of many workers over the window.
        const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        delayMs = Math.random() * cap;
      }
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }

  private async attemptOnce(op: CapaOp, method: string, path: string, body: unknown, attempt: number): Promise<AttemptResult> {
    const started = performance.now();
    const signal = AbortSignal.timeout(this.timeoutMs);
    const report = (status: number | null, outcome: CapaCallInfo['outcome']) => {
      try {
        this.onCall?.({ op, method, status, ms: Math.round(performance.now() - started), outcome, attempt });
      } catch {
        // A metrics hook must never break a Capa call.
      }
    };
    const headers: Record<string, string> = { 'partner-api-key': this.apiKey, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';

    let status: number | null = null;
    let retryAfterHeader: string | null = null;
    let text: string;
    try {
      const res = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        redirect: 'manual',
      });
      status = res.status;
      retryAfterHeader = res.headers.get('retry-after');
      text = await res.text(); // still under the same timeout signal
    } catch (cause) {
      const timedOut = signal.aborted || (cause instanceof Error && cause.name === 'TimeoutError');
      report(status, timedOut ? 'timeout' : 'network_error');
      return {
        ok: false,
        error: new CapaError({
          status: null,
          code: timedOut ? 'TIMEOUT' : 'NETWORK_ERROR',
          capaMessage: timedOut ? `No complete answer within ${this.timeoutMs} ms` : describeCause(cause),
          kind: timedOut ? 'timeout' : 'network',
          retryable: true,
          op,
          cause,
        }),
      };
    }

    const parsed = parseJson(text);
    if (status >= 200 && status < 300) {
      report(status, 'ok');
      return { ok: true, status, body: parsed.ok ? parsed.value : text };
    }

    report(status, 'http_error');
    const errBody = parsed.ok ? parsed.value : text || undefined;
    const { code, message } = readCapaError(errBody, status);
    const retryAfterMs = status === 429 ? parseRetryAfter(retryAfterHeader) : undefined;
    return {
      ok: false,
      error: new CapaError({
        status,
        code,
        capaMessage: message,
        kind: 'http',
        retryable: status >= 500 || status === 429,
        retryAfterMs,
        body: errBody,
        op,
      }),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Wire-format helpers

function seg(id: string): string {
  if (!id) throw new Error('Capa id must be a non-empty string');
  return encodeURIComponent(id);
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Capa uses `{success:true,data}` on v2 user/link/settings endpoints and `{status:"ok",data}` on
 * KYC details; older pages show bare objects. Unwrap only when an envelope marker is present —
 * the notification list's payload itself has a `data` array that must stay.
 */
function unwrap(body: unknown, op: string, status: number): unknown {
  if (!isRecord(body)) return body;
  // Only `success:false` marks an error inside a 2xx; a bare object may well carry its own
  // `status` field (a notification's PENDING/SENT), so `status` is only read as the "ok" marker.
  if (body.success === false) {
    const { code, message } = readCapaError(body, status);
    throw new CapaError({ status, code, capaMessage: message, kind: 'http', retryable: false, body, op });
  }
  if ((body.success === true || body.status === 'ok') && 'data' in body) return body.data;
  return body;
}

/** Code from `error.code ?? code ?? error.name`, message from `error.message ?? message` (§5). */
function readCapaError(body: unknown, status: number): { code: string; message: string } {
  let code: unknown;
  let message: unknown;
  if (isRecord(body)) {
    const e = isRecord(body.error) ? body.error : undefined;
    code = e?.code ?? body.code ?? e?.name;
    message = e?.message ?? body.message;
    // NestJS-style defaults put a string in `error` ("Not Found").
    if (message === undefined && typeof body.error === 'string') message = body.error;
  } else if (typeof body === 'string' && body.length > 0) {
    message = body.slice(0, 300);
  }
  if (Array.isArray(message)) message = message.join('; ');
  return {
    code: typeof code === 'string' && code ? code : `HTTP_${status}`,
    message: typeof message === 'string' && message ? message : `HTTP ${status}`,
  };
}

/** Retry-After is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function requireObject(data: unknown, op: string): Record<string, unknown> {
  if (!isRecord(data)) throw invalidResponse(op, 'expected a JSON object', data);
  return data;
}

function requireString(data: unknown, key: string, op: string): string {
  const o = requireObject(data, op);
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw invalidResponse(op, `missing ${key}`, data);
  return v;
}

function invalidResponse(op: string, why: string, body: unknown): CapaError {
  return new CapaError({
    status: 200,
    code: 'INVALID_RESPONSE',
    capaMessage: `Unexpected answer from Capa: ${why}`,
    kind: 'http',
    retryable: false,
    body,
    op,
  });
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    const code = inner && typeof inner === 'object' && 'code' in inner ? String((inner as { code: unknown }).code) : undefined;
    return code ? `${cause.message} (${code})` : cause.message;
  }
  return String(cause);
}

function isNoKycYet(err: CapaError): boolean {
  // Both "no KYC" and "unknown user" are 404 NOT_FOUND_ERROR; only the message tells them apart.
  return (
    err.status === 404 &&
    err.code === 'NOT_FOUND_ERROR' &&
    /verification|kyc/i.test(err.capaMessage) &&
    !/user was not found/i.test(err.capaMessage)
  );
}

const KEY_MESSAGES = /api key/i;
const OWNERSHIP_MESSAGES = /not associated with the partner|partner information is required/i;

/**
 * What went wrong with a Capa call, as a code and its values: the UI words it in the operator's
 * language (catalogue `capa:errors.<code>`), describeCapaError in English for logs and stored
 * errors. Values never include PII or Capa's raw body.
 */
export type CapaErrorCode =
  | 'unexpected'
  | 'timeout'
  | 'invalid_response'
  | 'rate_limited'
  | 'rate_limited_for'
  | 'internal'
  | 'other_partner'
  | 'api_key'
  | 'unauthorized'
  | 'partner_flow'
  | 'already_exists'
  | 'already_exists_after_retry'
  | 'refused'
  | 'no_notification'
  | 'no_notification_log'
  | 'no_kyc_yet'
  | 'unknown_user'
  | 'endpoint_not_found'
  | 'kyb_only'
  | 'invalid_input'
  | 'invalid_input_details'
  | 'http';

export function capaErrorCode(err: unknown): { code: CapaErrorCode; values: Record<string, string | number> } {
  const say = (code: CapaErrorCode, values: Record<string, string | number> = {}) => ({ code, values });
  if (!(err instanceof CapaError)) return say('unexpected', { detail: err instanceof Error ? err.message : String(err) });
  if (err.kind === 'timeout' || err.kind === 'network') return say('timeout');
  const s = err.status ?? 0;
  if (err.code === 'INVALID_RESPONSE') return say('invalid_response');
  if (s === 429) {
    return err.retryAfterMs !== undefined
      ? say('rate_limited_for', { seconds: Math.max(1, Math.ceil(err.retryAfterMs / 1000)) })
      : say('rate_limited');
  }
  if (s >= 500) return say('internal');
  if (s === 401) {
    if (OWNERSHIP_MESSAGES.test(err.capaMessage)) return say('other_partner');
    if (KEY_MESSAGES.test(err.capaMessage)) return say('api_key');
    return say('unauthorized');
  }
  if (s === 403) return say('partner_flow');
  if (s === 409) {
    if (err.op === 'createUser') return say(err.attempts > 1 ? 'already_exists_after_retry' : 'already_exists');
    return say('refused', { capaMessage: err.capaMessage });
  }
  if (s === 404) {
    if (err.op.includes('WebhookNotification')) {
      return err.code === 'NOT_FOUND' && /notification/i.test(err.capaMessage) ? say('no_notification') : say('no_notification_log');
    }
    if (err.code === 'NOT_FOUND_ERROR' && /verification|kyc/i.test(err.capaMessage)) return say('no_kyc_yet');
    if (err.code === 'NOT_FOUND_ERROR') return say('unknown_user');
    return say('endpoint_not_found');
  }
  if (s === 400) {
    if (err.code === 'INVALID_VERIFICATION_TYPE_FOR_USER') return say('kyb_only', { capaMessage: err.capaMessage });
    const details = errorDetails(err.body);
    return details
      ? say('invalid_input_details', { capaMessage: err.capaMessage, details })
      : say('invalid_input', { capaMessage: err.capaMessage });
  }
  return say('http', { status: s, capaCode: err.code, capaMessage: err.capaMessage });
}

const ENGLISH: Record<CapaErrorCode, string> = {
  unexpected: 'Unexpected error while talking to Capa: {{detail}}',
  timeout: 'Capa did not answer in time; the request will be retried.',
  invalid_response: 'Capa answered with something we could not understand.',
  rate_limited_for: 'Capa is rate-limiting us; retrying after {{seconds}} s.',
  rate_limited: 'Capa is rate-limiting us; retrying shortly.',
  internal: 'Capa had an internal error.',
  other_partner: 'This user belongs to another Capa partner (or the API key is wrong).',
  api_key: 'Capa rejected our API key; check CAPA_API_KEY.',
  unauthorized: 'Capa refused the request as unauthorized.',
  partner_flow: 'Capa says our partner account is not set up for this (invalid partner flow); contact Capa.',
  already_exists_after_retry:
    'This email or external id already exists in Capa (possibly created by our own earlier attempt that timed out).',
  already_exists: 'This email or external id already exists in Capa.',
  refused: 'Capa refused: {{capaMessage}}',
  no_notification: 'Capa has no webhook notification with this id.',
  no_notification_log: 'This Capa environment does not offer the webhook notification log.',
  no_kyc_yet: 'This user has not submitted KYC yet.',
  unknown_user: 'Capa does not know this user.',
  endpoint_not_found: 'Capa answered "not found" for this endpoint; check CAPA_BASE_URL.',
  kyb_only: 'This user type cannot do KYC (business users need KYB). Capa says: {{capaMessage}}',
  invalid_input_details: 'Capa rejected the input: {{capaMessage}} ({{details}})',
  invalid_input: 'Capa rejected the input: {{capaMessage}}',
  http: 'Capa answered HTTP {{status}} ({{capaCode}}): {{capaMessage}}',
};

/** Plain English words (logs, stored job errors); never includes PII or Capa's raw body. */
export function describeCapaError(err: unknown): string {
  const { code, values } = capaErrorCode(err);
  return ENGLISH[code].replace(/\{\{(\w+)\}\}/g, (_, k: string) => String(values[k] ?? ''));
}

// Longest first, so "Capa rejected the input: x (y)" is read with its details.
const ENGLISH_PATTERNS = (Object.entries(ENGLISH) as Array<[CapaErrorCode, string]>)
  .sort((a, b) => b[1].length - a[1].length)
  .map(([code, text]) => {
    const keys: string[] = [];
    const source = text
      .split(/(\{\{\w+\}\})/)
      .map((part) => {
        const m = /^\{\{(\w+)\}\}$/.exec(part);
        if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        keys.push(m[1]!);
        return '([\\s\\S]+?)';
      })
      .join('');
    return { code, keys, re: new RegExp(`^${source}$`) };
  });

/**
 * The code of a Capa failure stored as describeCapaError's English (job errors, old rows), so
 * it can be worded in the reader's language; null for any other text.
 */
export function capaErrorCodeOfText(text: string): { code: CapaErrorCode; values: Record<string, string> } | null {
  for (const p of ENGLISH_PATTERNS) {
    const m = p.re.exec(text);
    if (m) return { code: p.code, values: Object.fromEntries(p.keys.map((k, i) => [k, m[i + 1]!])) };
  }
  return null;
}

/** Optional list of field problems (`error.details`, as the sandbox sends); not documented by Capa. */
function errorDetails(body: unknown): string | undefined {
  if (!isRecord(body) || !isRecord(body.error) || !Array.isArray(body.error.details)) return undefined;
  const items = body.error.details.filter((d): d is string => typeof d === 'string');
  return items.length ? items.join('; ') : undefined;
}
