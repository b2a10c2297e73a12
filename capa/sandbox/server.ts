import { randomBytes, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CapaWebhookEvent, KycCountry, KycDetails, KycEvent, WebhookNotificationStatus } from '../types';
import { KYC_COUNTRIES, WEBHOOK_NOTIFICATION_STATUSES } from '../types';
import { isValidEmail } from '../../domain/email';
import { BodyTooLargeError, capaSettingsTimestamp, readBody, sendHtml, sendJson } from './http-util';
import { buildKycDetails, isKycOutcome, OUTCOME_EVENT, type KycOutcome } from './kyc-record';
import { MEDIA_FILES, mediaPng, type MediaFile } from './media';
import { startMailSink, type MailMessage, type MailSink } from './mail';
import { indexPage, kycSessionPage, mailboxPage, messagePage } from './pages';
import { createRng } from './rng';
import { WebhookDispatcher, type DeliveryConfig, type NotificationRecord } from './webhooks';
import type { CapaOp } from '../client.js';

/**
 * A faithful local Capa (capa-api.md): same paths, envelopes, status codes, error codes and
 * messages, including the quirks (401 for a foreign user, NOT_FOUND vs NOT_FOUND_ERROR, two
 * timestamp formats, two envelopes). Where the reference is silent the choice is marked
 * "Assumption" below. Everything under /__sandbox/ and /kyc/ is sandbox-only, not Capa.
 */

export type { KycOutcome } from './kyc-record';
export { KYC_OUTCOMES } from './kyc-record';

export interface SandboxPartnerOptions {
  apiKey: string;
  webhookSecret: string;
  /** Initial webhook URL (as if PUT /webhook-settings had been called); absent/null = none. */
  webhookUrl?: string | null;
}

export interface SandboxOptions {
  port?: number;
  host?: string;
  /** Base for kycLink and media URLs; defaults to the listening URL. */
  publicUrl?: string;
  partners?: SandboxPartnerOptions[];
  /** Multiplies Capa's webhook retry schedule [0,60,300,600,900] s; tests use e.g. 0.001. */
  timeScale?: number;
  /** Seed for the fault-injection PRNG (drop/duplicate/reorder/error decisions). */
  seed?: number;
  deliveryTimeoutMs?: number;
  /** Run the SMTP mail sink on this port (0 = ephemeral); null/undefined = no sink. */
  smtpPort?: number | null;
}

export interface SandboxFaults {
  latencyMs?: number;
  latencyJitterMs?: number;
  /** Fraction of partner API calls answered 500. */
  errorRate?: number;
  /** Fraction of partner API calls answered 429. */
  rate429?: number;
  /** Token bucket over all partner API calls; the excess gets 429 with Retry-After. */
  rateLimitPerSec?: number;
  /** Retry-After (seconds) on injected 429s. Fractions are a sandbox allowance for fast tests. */
  retryAfterSec?: number;
}

export type SandboxDelivery = Partial<DeliveryConfig>;

export type SandboxKycState = 'NOT_STARTED' | 'LINK_ISSUED' | KycOutcome;

export interface SandboxLinkTruth {
  id: string;
  kycLink: string;
  country: KycCountry;
  partnerRedirectUri: string | null;
  state: 'open' | 'used' | 'superseded';
  createdAt: string;
  usedAt: string | null;
  outcome: KycOutcome | null;
}

export interface SandboxUserTruth {
  userId: string;
  partnerApiKey: string;
  externalUserId: string;
  email: string;
  alias: string | null;
  type: 'INDIVIDUAL' | 'BUSINESS';
  createdAt: string;
  kycState: SandboxKycState;
  verificationResult: string | null;
  verificationSessionId: string | null;
  links: SandboxLinkTruth[];
}

export interface SandboxStats {
  apiCalls: { total: number; byOp: Record<string, Record<string, number>> };
  usersCreated: number;
  createUserCalls: { total: number; duplicates: number; byExternalUserId: Record<string, number> };
  linksGenerated: number;
  kycSubmissions: number;
  manualRetriesAccepted: number;
  sent429: number;
  injected500: number;
  deliveriesAttempted: number;
  deliveriesSucceeded: number;
  deliveriesFailed: number;
  deliveriesDuplicated: number;
  deliveriesDropped: number;
  notifications: Record<WebhookNotificationStatus, number>;
  mailReceived: number;
}

export interface SetOutcomeOptions {
  /** Raw aipriseSummary.verificationResult override (e.g. "APPROVED") to test unknown values. */
  verificationResult?: string;
}

export interface SetOutcomeResult {
  userId: string;
  externalUserId: string;
  outcome: KycOutcome;
  verificationResult: string;
  /** Webhook events emitted, in emission order. */
  events: KycEvent[];
  notificationIds: string[];
}

export interface Sandbox {
  url: string;
  port: number;
  publicUrl: string;
  smtpPort: number | null;
  close(): Promise<void>;
  reset(): void;
  stats(): SandboxStats;
  setFaults(f: SandboxFaults): SandboxFaults;
  setDelivery(d: SandboxDelivery): DeliveryConfig;
  setOutcome(userId: string, outcome: KycOutcome, opts?: SetOutcomeOptions): SetOutcomeResult;
  flushDeliveries(): Promise<void>;
  users(): SandboxUserTruth[];
  partners(): Array<{ apiKey: string; partnerId: string; webhookUrl: string | null }>;
  /** Emit an arbitrary event (e.g. a TRANSACTION event) to a partner's webhook. */
  emitEvent(event: CapaWebhookEvent, apiKey?: string): string[];
  mail(): MailMessage[];
  clearMail(): void;
}

export const DEFAULT_PARTNERS: SandboxPartnerOptions[] = [
  { apiKey: 'sandbox-partner-key', webhookSecret: 'sandbox-webhook-secret' },
  // A second partner so the "User is not associated with the partner" (401) quirk is testable.
  { apiKey: 'sandbox-other-partner-key', webhookSecret: 'sandbox-other-webhook-secret' },
];

/**
 * Assumption: Capa does not publish its key format; "Invalid API Key format" exists, so some
 * syntactic check runs before the lookup. This one accepts every key we have seen in examples.
 */
export const API_KEY_FORMAT = /^[A-Za-z0-9_-]{8,128}$/;

const MANUAL_RETRY_LIMIT_PER_MINUTE = 10;
const MAX_MANUAL_RETRIES = 3;

// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: string[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/** Bad input to a sandbox control (not a Capa error). */
export class SandboxInputError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SandboxInputError';
  }
}

const invalidInput = (details: string[]) => new ApiError(400, 'INVALID_USER_INPUT_ERROR', 'Invalid User Input', details);

interface Partner {
  id: string;
  apiKey: string;
  webhookSecret: string;
  initialWebhookUrl: string | null;
  settings: { id: string; url: string | null; createdAt: Date; updatedAt: Date } | null;
  manualRetryTimes: number[];
}

interface LinkSession {
  id: string;
  userId: string;
  country: KycCountry;
  partnerRedirectUri: string | null;
  state: 'open' | 'used' | 'superseded';
  createdAt: Date;
  usedAt: Date | null;
  outcome: KycOutcome | null;
}

interface KycRecord {
  outcome: KycOutcome;
  verificationResult: string;
  verificationSessionId: string;
  country: KycCountry;
  createdAt: Date;
  details: KycDetails;
}

interface UserRecord {
  userId: string;
  partnerId: string;
  type: 'INDIVIDUAL' | 'BUSINESS';
  email: string;
  externalUserId: string;
  alias?: string;
  createdAt: Date;
  links: LinkSession[];
  kyc: KycRecord | null;
}

/** The sandbox answers exactly the operations the client calls. */
type Op = CapaOp;

const API_ROUTES: Array<{ method: string; re: RegExp; op: Op; body: boolean }> = [
  { method: 'POST', re: /^\/api\/partner\/v2\/users$/, op: 'createUser', body: true },
  { method: 'POST', re: /^\/api\/partner\/v2\/users\/([^/]+)\/kyc\/verification-link$/, op: 'generateKycLink', body: true },
  { method: 'GET', re: /^\/api\/partner\/v2\/kyc\/details$/, op: 'getKycDetails', body: false },
  { method: 'PUT', re: /^\/api\/partner\/v2\/webhook-settings$/, op: 'setWebhookSettings', body: true },
  { method: 'GET', re: /^\/api\/partner\/v2\/webhook-notifications$/, op: 'listWebhookNotifications', body: false },
  { method: 'GET', re: /^\/api\/partner\/v2\/webhook-notifications\/([^/]+)$/, op: 'getWebhookNotification', body: false },
  { method: 'POST', re: /^\/api\/partner\/v2\/webhook-notifications\/([^/]+)\/retry$/, op: 'retryWebhookNotification', body: false },
];

/** The documented 500 messages (the KYC-details one is our analogue of the KYB page's). */
const INTERNAL_ERROR_MESSAGE: Partial<Record<Op, string>> = {
  createUser: 'User creation failed',
  generateKycLink: 'Failed to create verification link',
  getKycDetails: 'Failed to get user KYC details',
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Docs: `https://` or a custom app scheme (`myapp://`). Sandbox allowance: http://localhost and
 * http://127.0.0.1 too, so a local dashboard can be the redirect target. Plain http elsewhere
 * and script-capable schemes are refused.
 */
export function isAcceptableRedirectUri(v: string): boolean {
  if (v.length > 2048) return false;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return false;
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return false;
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  if (scheme === 'https') return Boolean(u.hostname);
  if (scheme === 'http') return u.hostname === 'localhost' || u.hostname === '127.0.0.1';
  return !['javascript', 'data', 'vbscript', 'file', 'ftp', 'ws', 'wss', 'blob'].includes(scheme);
}

// ---------------------------------------------------------------------------------------------

export async function createSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const host = opts.host ?? '127.0.0.1';
  const timeScale = opts.timeScale ?? 1;
  if (!(timeScale > 0)) throw new Error('createSandbox: timeScale must be > 0');
  const rng = createRng(opts.seed ?? Math.floor(Math.random() * 2 ** 32));

  const partnerOpts = opts.partners ?? DEFAULT_PARTNERS;
  const partners: Partner[] = partnerOpts.map((p) => {
    if (!API_KEY_FORMAT.test(p.apiKey)) throw new Error(`createSandbox: partner apiKey must match ${API_KEY_FORMAT}`);
    return {
      id: randomUUID(),
      apiKey: p.apiKey,
      webhookSecret: p.webhookSecret,
      initialWebhookUrl: p.webhookUrl ?? null,
      settings: null,
      manualRetryTimes: [],
    };
  });
  if (new Set(partners.map((p) => p.apiKey)).size !== partners.length) throw new Error('createSandbox: partner apiKeys must be unique');
  const initSettings = (p: Partner) => {
    const now = new Date();
    p.settings = p.initialWebhookUrl ? { id: randomUUID(), url: p.initialWebhookUrl, createdAt: now, updatedAt: now } : null;
    p.manualRetryTimes = [];
  };
  partners.forEach(initSettings);
  const partnerById = (id: string) => partners.find((p) => p.id === id)!;

  const users = new Map<string, UserRecord>();
  const links = new Map<string, LinkSession>();
  let faults: SandboxFaults = {};
  let bucket = { tokens: 0, at: Date.now() };
  let counters = emptyCounters();

  const dispatcher = new WebhookDispatcher({
    rng,
    timeScale,
    deliveryTimeoutMs: opts.deliveryTimeoutMs ?? 5_000,
    target: (partnerId) => {
      const p = partnerById(partnerId);
      return { url: p.settings?.url ?? null, secret: p.webhookSecret };
    },
  });

  let mailSink: MailSink | null = null;
  let publicUrl = '';

  // ---- core behaviour shared by the API, the hosted page and the controls ----------------------

  function submitKyc(user: UserRecord, outcome: KycOutcome, link: LinkSession | null, verificationResult?: string): SetOutcomeResult {
    const partner = partnerById(user.partnerId);
    const now = new Date();
    let events: KycEvent[];
    const outcomeEvent = OUTCOME_EVENT[outcome];
    if (!link && user.kyc && (user.kyc.outcome === 'PENDING' || user.kyc.outcome === 'REVIEW_NEEDED')) {
      // Resolving a verification still being evaluated (e.g. compliance finished a manual
      // review): same record and session, new result, and no second CREATED_KYC.
      const k = user.kyc;
      k.outcome = outcome;
      k.verificationResult = verificationResult ?? outcome;
      k.details = buildKycDetails({
        userId: user.userId,
        alias: user.alias,
        country: k.country,
        outcome,
        verificationResult,
        publicUrl,
        verificationSessionId: k.verificationSessionId,
        createdAt: k.createdAt,
      });
      events = outcomeEvent ? [outcomeEvent] : [];
    } else {
      if (link) {
        link.state = 'used';
        link.usedAt = now;
        link.outcome = outcome;
      }
      const country = link?.country ?? user.links.at(-1)?.country ?? 'MX';
      const verificationSessionId = randomUUID();
      user.kyc = {
        outcome,
        verificationResult: verificationResult ?? outcome,
        verificationSessionId,
        country,
        createdAt: now,
        details: buildKycDetails({
          userId: user.userId,
          alias: user.alias,
          country,
          outcome,
          verificationResult,
          publicUrl,
          verificationSessionId,
          createdAt: now,
        }),
      };
      events = outcomeEvent ? ['CREATED_KYC', outcomeEvent] : ['CREATED_KYC'];
    }
    counters.kycSubmissions++;
    const records = dispatcher.emit(
      partner.id,
      events.map((event) => ({ type: 'KYC', event, externalUserId: user.externalUserId })),
    );
    return {
      userId: user.userId,
      externalUserId: user.externalUserId,
      outcome,
      verificationResult: user.kyc.verificationResult,
      events,
      notificationIds: records.map((r) => r.id),
    };
  }

  function setOutcome(userId: string, outcome: KycOutcome, o: SetOutcomeOptions = {}): SetOutcomeResult {
    if (!isKycOutcome(outcome)) throw new SandboxInputError(400, 'outcome must be one of VERIFIED, REJECTED, REVIEW_NEEDED, PENDING');
    if (o.verificationResult !== undefined && (typeof o.verificationResult !== 'string' || !o.verificationResult)) {
      throw new SandboxInputError(400, 'verificationResult must be a non-empty string');
    }
    const user = users.get(userId);
    if (!user) throw new SandboxInputError(404, `No sandbox user ${userId}`);
    if (user.type === 'BUSINESS') throw new SandboxInputError(400, 'BUSINESS users go through KYB, not KYC');
    // The customer's newest open link is what a real submission would come through.
    const open = [...user.links].reverse().find((l) => l.state === 'open') ?? null;
    return submitKyc(user, outcome, open, o.verificationResult);
  }

  function setFaults(f: SandboxFaults): SandboxFaults {
    const next: SandboxFaults = {};
    const num = (k: keyof SandboxFaults, max: number) => {
      const v = (f as Record<string, unknown>)[k];
      if (v === undefined || v === null) return;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max)
        throw new SandboxInputError(400, `${k} must be a number between 0 and ${max}`);
      next[k] = v;
    };
    num('latencyMs', 600_000);
    num('latencyJitterMs', 600_000);
    num('errorRate', 1);
    num('rate429', 1);
    num('rateLimitPerSec', 1_000_000);
    num('retryAfterSec', 86_400);
    faults = next;
    // A fresh bucket starts full: rateLimitPerSec also acts as the burst size.
    bucket = { tokens: next.rateLimitPerSec ?? 0, at: Date.now() };
    return { ...faults };
  }

  function setDelivery(d: SandboxDelivery): DeliveryConfig {
    for (const k of ['dropRate', 'duplicateRate'] as const) {
      const v = d[k];
      if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v <= 1)))
        throw new SandboxInputError(400, `${k} must be a number between 0 and 1`);
    }
    for (const k of ['reorder', 'paused'] as const) {
      if (d[k] !== undefined && typeof d[k] !== 'boolean') throw new SandboxInputError(400, `${k} must be a boolean`);
    }
    return { ...dispatcher.setConfig(d) };
  }

  function userTruth(u: UserRecord): SandboxUserTruth {
    return {
      userId: u.userId,
      partnerApiKey: partnerById(u.partnerId).apiKey,
      externalUserId: u.externalUserId,
      email: u.email,
      alias: u.alias ?? null,
      type: u.type,
      createdAt: u.createdAt.toISOString(),
      kycState: u.kyc ? u.kyc.outcome : u.links.length ? 'LINK_ISSUED' : 'NOT_STARTED',
      verificationResult: u.kyc?.verificationResult ?? null,
      verificationSessionId: u.kyc?.verificationSessionId ?? null,
      links: u.links.map((l) => ({
        id: l.id,
        kycLink: kycLinkUrl(l.id),
        country: l.country,
        partnerRedirectUri: l.partnerRedirectUri,
        state: l.state,
        createdAt: l.createdAt.toISOString(),
        usedAt: l.usedAt?.toISOString() ?? null,
        outcome: l.outcome,
      })),
    };
  }

  function stats(): SandboxStats {
    const notifications: Record<WebhookNotificationStatus, number> = { PENDING: 0, SENT: 0, FAILED: 0, NOT_SENT: 0 };
    for (const n of dispatcher.notifications) notifications[n.status]++;
    return structuredClone({ ...counters, ...dispatcher.stats, notifications, mailReceived: mailSink?.messages().length ?? 0 });
  }

  function reset(): void {
    users.clear();
    links.clear();
    dispatcher.reset();
    partners.forEach(initSettings);
    faults = {};
    bucket = { tokens: 0, at: Date.now() };
    counters = emptyCounters();
    mailSink?.clear();
  }

  const kycLinkUrl = (id: string) => `${publicUrl}/kyc/session/${id}`;

  // ---- partner API -----------------------------------------------------------------------------

  function authenticate(req: IncomingMessage): Partner {
    const raw = req.headers['partner-api-key'];
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (!key) throw new ApiError(401, 'UNAUTHORIZED', 'API Key is missing');
    if (!API_KEY_FORMAT.test(key)) throw new ApiError(401, 'UNAUTHORIZED', 'Invalid API Key format');
    const partner = partners.find((p) => p.apiKey === key);
    if (!partner) throw new ApiError(401, 'UNAUTHORIZED', 'Invalid API Key');
    return partner;
  }

  /** Capa answers 401 (not 403/404) for a user owned by another partner — reproduced. */
  function ownedUser(partner: Partner, userId: string): UserRecord {
    const user = users.get(userId);
    if (!user) throw new ApiError(404, 'NOT_FOUND_ERROR', 'Requested User was not found');
    if (user.partnerId !== partner.id) throw new ApiError(401, 'UNAUTHORIZED', 'User is not associated with the partner');
    return user;
  }

  async function readJson(req: IncomingMessage): Promise<unknown> {
    const buf = await readBody(req);
    if (buf.length === 0) return undefined;
    if (!/\bjson\b/i.test(String(req.headers['content-type'] ?? ''))) throw invalidInput(['body must be application/json']);
    try {
      return JSON.parse(buf.toString('utf8'));
    } catch {
      // Assumption: Capa's docs list no "malformed JSON" error; we answer like a validation failure.
      throw invalidInput(['body is not valid JSON']);
    }
  }

  function applyRateFaults(): void {
    const retryAfter = (fallbackSec: number) => String(faults.retryAfterSec ?? fallbackSec);
    if (faults.rateLimitPerSec) {
      const rate = faults.rateLimitPerSec;
      const now = Date.now();
      bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
      bucket.at = now;
      if (bucket.tokens < 1) {
        throw new ApiError(429, 'TOO_MANY_REQUESTS', 'Rate limit exceeded. Try again in a few seconds.', undefined, {
          'retry-after': retryAfter(Math.max(1, Math.ceil((1 - bucket.tokens) / rate))),
        });
      }
      bucket.tokens -= 1;
    }
    if (faults.rate429 && rng() < faults.rate429) {
      throw new ApiError(429, 'TOO_MANY_REQUESTS', 'Rate limit exceeded. Try again in a few seconds.', undefined, {
        'retry-after': retryAfter(1),
      });
    }
  }

  const handlers: Record<
    Op,
    (ctx: { partner: Partner; params: string[]; query: URLSearchParams; body: unknown; req: IncomingMessage }) => {
      status: number;
      body: unknown;
    }
  > = {
    createUser({ partner, body }) {
      if (!isRecord(body)) throw invalidInput(['body must be a JSON object']);
      const problems: string[] = [];
      if (body.type !== 'INDIVIDUAL' && body.type !== 'BUSINESS') problems.push('type must be one of INDIVIDUAL, BUSINESS');
      if (typeof body.email !== 'string' || body.email.trim() === '') problems.push('email must be a non-empty string');
      if (typeof body.externalUserId !== 'string' || body.externalUserId.trim() === '' || body.externalUserId.length > 255) {
        problems.push('externalUserId must be a non-empty string of at most 255 characters');
      }
      if (body.alias !== undefined && body.alias !== null && (typeof body.alias !== 'string' || body.alias.length > 100)) {
        problems.push('alias must be a string of at most 100 characters');
      }
      if (problems.length) throw invalidInput(problems);
      const email = (body.email as string).trim();
      // Two documented email errors: shape problems are "Invalid User Input" (DTO validation),
      // a string that is not an address is BAD_REQUEST "Provided email is not valid". Capa says
      // only that the email is "validated"; it accepts internationalised addresses (accented
      // local parts), so the sandbox applies our own rule (domain/email.ts) — see capa/README.md.
      if (!isValidEmail(email)) throw new ApiError(400, 'BAD_REQUEST', 'Provided email is not valid');
      const externalUserId = body.externalUserId as string;
      counters.createUserCalls.total++;
      counters.createUserCalls.byExternalUserId[externalUserId] = (counters.createUserCalls.byExternalUserId[externalUserId] ?? 0) + 1;
      const mine = [...users.values()].filter((u) => u.partnerId === partner.id);
      // Assumption: the docs only say a reused externalUserId "causes a conflict" and that email
      // is unique per partner; status/code are unlisted. We answer 409 CONFLICT (the code Capa
      // uses elsewhere) and do NOT behave idempotently like the legacy v1 page describes.
      if (mine.some((u) => u.externalUserId === externalUserId)) {
        counters.createUserCalls.duplicates++;
        throw new ApiError(409, 'CONFLICT', 'User with this externalUserId already exists');
      }
      if (mine.some((u) => u.email.toLowerCase() === email.toLowerCase())) {
        throw new ApiError(409, 'CONFLICT', 'User with this email already exists');
      }
      const user: UserRecord = {
        userId: randomUUID(),
        partnerId: partner.id,
        type: body.type as UserRecord['type'],
        email,
        externalUserId,
        createdAt: new Date(),
        links: [],
        kyc: null,
      };
      if (typeof body.alias === 'string' && body.alias !== '') user.alias = body.alias;
      users.set(user.userId, user);
      counters.usersCreated++;
      return { status: 201, body: { success: true, data: { userId: user.userId } } };
    },

    generateKycLink({ partner, params, body }) {
      const problems: string[] = [];
      const b = body === undefined ? {} : body;
      if (!isRecord(b)) throw invalidInput(['body must be a JSON object']);
      if (!(KYC_COUNTRIES as readonly unknown[]).includes(b.country)) problems.push('country must be one of MX, DO');
      if (
        b.partnerRedirectUri !== undefined &&
        b.partnerRedirectUri !== null &&
        (typeof b.partnerRedirectUri !== 'string' || !isAcceptableRedirectUri(b.partnerRedirectUri))
      ) {
        problems.push(
          'partnerRedirectUri must be an https:// URL or a custom app scheme (sandbox also allows http://localhost and http://127.0.0.1)',
        );
      }
      if (problems.length) throw invalidInput(problems);
      const user = ownedUser(partner, params[0]!);
      if (user.type !== 'INDIVIDUAL') {
        throw new ApiError(400, 'INVALID_VERIFICATION_TYPE_FOR_USER', `${user.type} users can only request KYB verification`);
      }
      // Assumption: a new link supersedes the user's older unused links (the docs only say a link
      // is bound to one provider session and an expired link must be replaced).
      for (const l of user.links) if (l.state === 'open') l.state = 'superseded';
      const link: LinkSession = {
        id: randomBytes(16).toString('hex'),
        userId: user.userId,
        country: b.country as KycCountry,
        partnerRedirectUri: typeof b.partnerRedirectUri === 'string' ? b.partnerRedirectUri : null,
        state: 'open',
        createdAt: new Date(),
        usedAt: null,
        outcome: null,
      };
      user.links.push(link);
      links.set(link.id, link);
      counters.linksGenerated++;
      return { status: 201, body: { success: true, data: { kycLink: kycLinkUrl(link.id) } } };
    },

    getKycDetails({ partner, query }) {
      const userId = query.get('userId');
      if (!userId) throw invalidInput(['userId must be provided']);
      const user = ownedUser(partner, userId);
      // Assumption (capa-api.md §7.5): no KYC yet → 404 NOT_FOUND_ERROR, by analogy with KYB.
      if (!user.kyc) throw new ApiError(404, 'NOT_FOUND_ERROR', 'Requested KYC verification was not found');
      // Note the other envelope: KYC details use {status:"ok"}, not {success:true}.
      return { status: 200, body: { status: 'ok', data: user.kyc.details } };
    },

    setWebhookSettings({ partner, body }) {
      if (!isRecord(body) || !('url' in body)) throw invalidInput(['url must be provided (a URL string or null)']);
      const url = body.url;
      if (url !== null) {
        let ok = typeof url === 'string' && url.length <= 2048;
        if (ok) {
          try {
            const u = new URL(url as string);
            // Assumption: real Capa likely insists on https; the sandbox must reach local http.
            ok = (u.protocol === 'https:' || u.protocol === 'http:') && Boolean(u.hostname);
          } catch {
            ok = false;
          }
        }
        if (!ok) throw invalidInput(['url must be an http(s) URL or null']);
      }
      const now = new Date();
      if (partner.settings) {
        partner.settings.url = url as string | null;
        partner.settings.updatedAt = now;
      } else {
        partner.settings = { id: randomUUID(), url: url as string | null, createdAt: now, updatedAt: now };
      }
      const s = partner.settings;
      return {
        status: 200,
        body: {
          success: true,
          data: {
            id: s.id,
            partnerId: partner.id,
            url: s.url,
            createdAt: capaSettingsTimestamp(s.createdAt),
            updatedAt: capaSettingsTimestamp(s.updatedAt),
          },
        },
      };
    },

    listWebhookNotifications({ partner, query }) {
      const problems: string[] = [];
      const status = query.get('status');
      if (status !== null && !(WEBHOOK_NOTIFICATION_STATUSES as readonly string[]).includes(status))
        problems.push('status must be one of PENDING, SENT, FAILED, NOT_SENT');
      const intParam = (name: string, def: number, min: number, max: number) => {
        const v = query.get(name);
        if (v === null) return def;
        if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
          problems.push(`${name} must be an integer between ${min} and ${max}`);
          return def;
        }
        return Number(v);
      };
      // Assumption: skip is a record offset (the docs call it "skip"; one SDK example reads like a page index).
      const skip = intParam('skip', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = intParam('limit', 20, 1, 100);
      if (problems.length) throw invalidInput(problems);
      // Assumption: newest first.
      const all = dispatcher.notifications.filter((n) => n.partnerId === partner.id && (status === null || n.status === status)).reverse();
      const page = all.slice(skip, skip + limit);
      return {
        status: 200,
        body: { success: true, data: { count: page.length, total: all.length, data: page.map((n) => dispatcher.toListItem(n)) } },
      };
    },

    getWebhookNotification({ partner, params }) {
      const n = ownNotification(partner, params[0]!);
      return { status: 200, body: { success: true, data: dispatcher.toDetail(n) } };
    },

    retryWebhookNotification({ partner, params }) {
      // Counted before any other check, like a throttling guard in front of the handler
      // (assumption; so refused retries also use up the partner's 10/minute).
      const now = Date.now();
      partner.manualRetryTimes = partner.manualRetryTimes.filter((t) => t > now - 60_000);
      if (partner.manualRetryTimes.length >= MANUAL_RETRY_LIMIT_PER_MINUTE) {
        const waitSec = Math.max(1, Math.ceil((partner.manualRetryTimes[0]! + 60_000 - now) / 1000));
        // Retry-After is not documented; NestJS's throttler sends it, so we do too.
        throw new ApiError(429, 'TOO_MANY_REQUESTS', 'Rate limit exceeded. Try again in a few seconds.', undefined, {
          'retry-after': String(waitSec),
        });
      }
      partner.manualRetryTimes.push(now);
      const n = ownNotification(partner, params[0]!);
      if (n.status !== 'FAILED') throw new ApiError(409, 'CONFLICT', 'Notification is not in FAILED status');
      if (n.manualRetryCount >= MAX_MANUAL_RETRIES) {
        throw new ApiError(
          409,
          'CONFLICT',
          `Partner webhook notification has reached the maximum number of manual retries (${MAX_MANUAL_RETRIES})`,
        );
      }
      dispatcher.manualRetry(n);
      counters.manualRetriesAccepted++;
      // Assumption: the response body is undocumented; we return the notification detail with 200.
      return { status: 200, body: { success: true, data: dispatcher.toDetail(n) } };
    },
  };

  function ownNotification(partner: Partner, id: string): NotificationRecord {
    const n = dispatcher.notifications.find((x) => x.id === id && x.partnerId === partner.id);
    if (!n) throw new ApiError(404, 'NOT_FOUND', 'Webhook notification not found');
    return n;
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/$/, '') : url.pathname;
    let route: (typeof API_ROUTES)[number] | undefined;
    let params: string[] = [];
    for (const r of API_ROUTES) {
      const m = r.method === method ? r.re.exec(path) : null;
      if (m) {
        route = r;
        params = m.slice(1).map(safeDecode);
        break;
      }
    }
    const op = route?.op ?? 'unknown';
    const respond = (status: number, body: unknown, headers?: Record<string, string>) => {
      counters.apiCalls.total++;
      const byStatus = (counters.apiCalls.byOp[op] ??= {});
      byStatus[String(status)] = (byStatus[String(status)] ?? 0) + 1;
      if (status === 429) counters.sent429++;
      if (!res.destroyed) sendJson(res, status, body, headers);
    };
    try {
      // Like NestJS: an unknown method/path is a 404 before any guard runs. There is
      // deliberately no GET /users (Capa documents none).
      if (!route) throw new ApiError(404, 'NOT_FOUND', `Cannot ${method} ${url.pathname}`);
      const delay = (faults.latencyMs ?? 0) + (faults.latencyJitterMs ? rng() * faults.latencyJitterMs : 0);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      // Faults model the infrastructure in front of Capa, so they hit before authentication.
      applyRateFaults();
      if (faults.errorRate && rng() < faults.errorRate) {
        counters.injected500++;
        throw new ApiError(500, 'INTERNAL_SERVER_ERROR', INTERNAL_ERROR_MESSAGE[route.op] ?? 'Internal server error');
      }
      const partner = authenticate(req);
      const body = route.body ? await readJson(req) : undefined;
      const out = handlers[route.op]({ partner, params, query: url.searchParams, body, req });
      respond(out.status, out.body);
    } catch (err) {
      if (err instanceof ApiError) {
        const error: Record<string, unknown> = { code: err.code, message: err.message };
        if (err.details) error.details = err.details;
        // Assumption: the error body shape is undocumented (capa-api.md §5).
        respond(err.status, { success: false, error }, err.headers);
      } else if (err instanceof BodyTooLargeError) {
        respond(413, { success: false, error: { code: 'PAYLOAD_TOO_LARGE', message: 'Request body too large' } });
      } else {
        respond(500, { success: false, error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' } });
      }
    }
  }

  // ---- hosted KYC page (stand-in for the provider) --------------------------------------------

  async function handleKycSession(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const link = links.get(id);
    if (!link) return sendHtml(res, 404, messagePage('Unknown link', 'This verification link does not exist.'));
    if (link.state === 'superseded') {
      return sendHtml(
        res,
        410,
        messagePage('This link has expired', 'A newer verification link was issued for you. Please use the most recent link you received.'),
      );
    }
    if (link.state === 'used') {
      return sendHtml(
        res,
        409,
        messagePage(
          'This link was already used',
          'This verification link was already used to submit a verification. Each link works once.',
        ),
      );
    }
    const user = users.get(link.userId)!;
    if (req.method === 'GET' || req.method === 'HEAD') {
      return sendHtml(res, 200, kycSessionPage({ alias: user.alias, email: user.email, country: link.country }));
    }
    if (req.method !== 'POST') return sendHtml(res, 405, messagePage('Method not allowed', 'Use the form.'), { allow: 'GET, POST' });
    const raw = (await readBody(req, 64 * 1024)).toString('utf8');
    let outcome: unknown;
    if (/json/i.test(String(req.headers['content-type'] ?? ''))) {
      try {
        outcome = (JSON.parse(raw) as { outcome?: unknown }).outcome;
      } catch {
        outcome = undefined;
      }
    } else {
      outcome = new URLSearchParams(raw).get('outcome');
    }
    if (!isKycOutcome(outcome))
      return sendHtml(res, 400, messagePage('Choose a result', 'Pick one of the buttons on the verification page.'));
    submitKyc(user, outcome, link);
    if (link.partnerRedirectUri) {
      res.writeHead(303, { location: link.partnerRedirectUri, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    return sendHtml(res, 200, messagePage('Thank you', 'Your verification was submitted. You can close this window.'));
  }

  // ---- sandbox controls (not Capa) ---------------------------------------------------------------

  async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/$/, '');
    const body = async (): Promise<Record<string, unknown>> => {
      const buf = await readBody(req, 64 * 1024);
      if (buf.length === 0) return {};
      let v: unknown;
      try {
        v = JSON.parse(buf.toString('utf8'));
      } catch {
        throw new SandboxInputError(400, 'body must be JSON');
      }
      if (!isRecord(v)) throw new SandboxInputError(400, 'body must be a JSON object');
      return v;
    };
    try {
      let m: RegExpExecArray | null;
      if (method === 'GET' && path === '/__sandbox/stats') return sendJson(res, 200, stats());
      if (method === 'GET' && path === '/__sandbox/users') {
        return sendJson(res, 200, {
          notCapa: true,
          note: 'Sandbox debug route: Capa has no list-users endpoint.',
          users: [...users.values()].map(userTruth),
        });
      }
      if (method === 'POST' && (m = /^\/__sandbox\/users\/([^/]+)\/kyc-outcome$/.exec(path))) {
        const b = await body();
        const result = setOutcome(safeDecode(m[1]!), b.outcome as KycOutcome, {
          verificationResult: b.verificationResult as string | undefined,
        });
        return sendJson(res, 200, result);
      }
      if (method === 'POST' && path === '/__sandbox/faults') return sendJson(res, 200, { faults: setFaults(await body()) });
      if (method === 'POST' && path === '/__sandbox/delivery') return sendJson(res, 200, { delivery: setDelivery(await body()) });
      if (method === 'POST' && path === '/__sandbox/reset') {
        reset();
        return sendJson(res, 200, { ok: true });
      }
      if (method === 'POST' && path === '/__sandbox/flush') {
        await dispatcher.flush();
        return sendJson(res, 200, { ok: true });
      }
      if (method === 'POST' && path === '/__sandbox/events') {
        const b = await body();
        if (!isRecord(b.event) || typeof b.event.type !== 'string' || typeof b.event.event !== 'string') {
          throw new SandboxInputError(400, 'event must be an object with string type and event');
        }
        return sendJson(res, 200, { notificationIds: emitEvent(b.event as CapaWebhookEvent, b.apiKey as string | undefined) });
      }
      if (method === 'GET' && path === '/__sandbox/mail')
        return sendJson(res, 200, { smtpPort: mailSink?.port ?? null, messages: mailSink?.messages() ?? [] });
      if (method === 'DELETE' && path === '/__sandbox/mail') {
        mailSink?.clear();
        return sendJson(res, 200, { ok: true });
      }
      if (method === 'GET' && path === '/__sandbox/mailbox')
        return sendHtml(res, 200, mailboxPage(mailSink?.messages() ?? [], mailSink?.port ?? null));
      return sendJson(res, 404, { error: `No sandbox control ${method} ${path}` });
    } catch (err) {
      if (err instanceof SandboxInputError) return sendJson(res, err.status, { error: err.message });
      throw err;
    }
  }

  function emitEvent(event: CapaWebhookEvent, apiKey?: string): string[] {
    const partner = apiKey === undefined ? partners[0]! : partners.find((p) => p.apiKey === apiKey);
    if (!partner) throw new SandboxInputError(404, 'No partner with that apiKey');
    return dispatcher.emit(partner.id, [event]).map((n) => n.id);
  }

  // ---- server ----------------------------------------------------------------------------------

  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    } catch {
      return sendJson(res, 400, { error: 'Bad request URL' });
    }
    const p = url.pathname;
    let work: Promise<void>;
    if (p.startsWith('/api/')) work = handleApi(req, res, url);
    else if (p.startsWith('/__sandbox/')) work = handleControl(req, res, url);
    else if (p.startsWith('/kyc/session/'))
      work = handleKycSession(req, res, safeDecode(p.slice('/kyc/session/'.length).replace(/\/$/, '')));
    else if (req.method === 'GET' && p.startsWith('/kyc/media/')) {
      const [, , , sessionId, file] = p.split('/');
      const known = [...users.values()].some((u) => u.kyc?.verificationSessionId === sessionId);
      if (!known || !file || !Object.hasOwn(MEDIA_FILES, file)) work = Promise.resolve(sendJson(res, 404, { error: 'no such media' }));
      else {
        const body = mediaPng(file as MediaFile);
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.length });
        res.end(body);
        work = Promise.resolve();
      }
    } else if (req.method === 'GET' && p === '/') {
      work = Promise.resolve(
        sendHtml(
          res,
          200,
          indexPage({
            url: publicUrl,
            smtpPort: mailSink?.port ?? null,
            partners: partnersInfo(),
            counts: { users: users.size, notifications: dispatcher.notifications.length, mail: mailSink?.messages().length ?? 0 },
          }),
        ),
      );
    } else work = Promise.resolve(sendJson(res, 404, { error: 'Not found' }));
    work.catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return void res.destroy();
      if (err instanceof BodyTooLargeError) return sendJson(res, 413, { error: 'body too large' });
      sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  // Browsers and undici keep connections alive; close() below also drops those.
  server.keepAliveTimeout = 5_000;

  const partnersInfo = () => partners.map((p) => ({ apiKey: p.apiKey, partnerId: p.id, webhookUrl: p.settings?.url ?? null }));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const listeningUrl = `http://${urlHost}:${port}`;
  publicUrl = (opts.publicUrl ?? listeningUrl).replace(/\/+$/, '');

  if (opts.smtpPort !== undefined && opts.smtpPort !== null) {
    try {
      mailSink = await startMailSink({ port: opts.smtpPort, host });
    } catch (err) {
      await new Promise<void>((r) => server.close(() => r()));
      throw err;
    }
  }

  let closed = false;
  return {
    url: listeningUrl,
    port,
    publicUrl,
    smtpPort: mailSink?.port ?? null,
    async close() {
      if (closed) return;
      closed = true;
      dispatcher.close();
      await Promise.all([
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
        mailSink?.close(),
      ]);
    },
    reset,
    stats,
    setFaults,
    setDelivery,
    setOutcome,
    flushDeliveries: () => dispatcher.flush(),
    users: () => [...users.values()].map(userTruth),
    partners: partnersInfo,
    emitEvent,
    mail: () => mailSink?.messages() ?? [],
    clearMail: () => mailSink?.clear(),
  };
}

/** decodeURIComponent that never throws (a stray % in a path must not crash the server). */
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function emptyCounters() {
  return {
    apiCalls: { total: 0, byOp: {} as Record<string, Record<string, number>> },
    usersCreated: 0,
    createUserCalls: { total: 0, duplicates: 0, byExternalUserId: {} as Record<string, number> },
    linksGenerated: 0,
    kycSubmissions: 0,
    manualRetriesAccepted: 0,
    sent429: 0,
    injected500: 0,
  };
}
