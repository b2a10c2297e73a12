import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CapaClient,
  CapaError,
  capaErrorCode,
  capaErrorCodeOfText,
  describeCapaError,
  parseRetryAfter,
  type CapaCallInfo,
  type CapaClientOptions,
} from './client';
import { createSandbox, type Sandbox } from './sandbox/server';

// Everything here is real HTTP against the sandbox (or, for envelope variants the sandbox does
// not produce, against a tiny node:http server). No fetch mocks.

const KEY = 'sandbox-partner-key';
const OTHER_KEY = 'sandbox-other-partner-key';

let sandbox: Sandbox;
let seq = 0;

beforeAll(async () => {
  sandbox = await createSandbox({ timeScale: 0.001, seed: 42 });
});
afterAll(async () => {
  await sandbox?.close();
});
beforeEach(() => {
  sandbox.reset();
});

function client(extra: Partial<CapaClientOptions> = {}): CapaClient {
  return new CapaClient({ baseUrl: sandbox.url, apiKey: KEY, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2_000, ...extra });
}

function newUser(over: Partial<{ email: string; externalUserId: string; alias: string; type: 'INDIVIDUAL' | 'BUSINESS' }> = {}) {
  seq++;
  return { type: 'INDIVIDUAL' as const, email: `user${seq}@example.mx`, externalUserId: `ext-${seq}`, alias: `Ana López`, ...over };
}

async function capaError(p: Promise<unknown>): Promise<CapaError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CapaError);
    return err as CapaError;
  }
  throw new Error('expected the call to fail');
}

const calls = (op: string) => sandbox.stats().apiCalls.byOp[op] ?? {};
const totalCalls = (op: string) => Object.values(calls(op)).reduce((a, b) => a + b, 0);

describe('createUser', () => {
  it('creates a user and returns its UUID', async () => {
    const { userId } = await client().createUser(newUser());
    expect(userId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(sandbox.users().map((u) => u.userId)).toEqual([userId]);
    expect(calls('createUser')).toEqual({ '201': 1 });
  });

  it('409 CONFLICT on a reused externalUserId, not retried', async () => {
    const c = client();
    const u = newUser();
    await c.createUser(u);
    const err = await capaError(c.createUser({ ...u, email: 'different@example.mx' }));
    expect(err).toMatchObject({ status: 409, code: 'CONFLICT', kind: 'http', retryable: false, op: 'createUser', attempts: 1 });
    expect(describeCapaError(err)).toBe('This email or external id already exists in Capa.');
    expect(calls('createUser')).toEqual({ '201': 1, '409': 1 });
    expect(sandbox.stats().createUserCalls).toMatchObject({ total: 2, duplicates: 1 });
  });

  it('409 CONFLICT on a reused email (case-insensitive)', async () => {
    const c = client();
    const u = newUser();
    await c.createUser(u);
    const err = await capaError(c.createUser(newUser({ email: u.email.toUpperCase() })));
    expect(err).toMatchObject({ status: 409, code: 'CONFLICT' });
  });

  it('the same externalUserId is fine for another partner', async () => {
    const u = newUser();
    await client().createUser(u);
    await expect(client({ apiKey: OTHER_KEY }).createUser(u)).resolves.toHaveProperty('userId');
  });

  it('400 INVALID_USER_INPUT_ERROR for bad type / missing externalUserId / long alias, not retried', async () => {
    const c = client();
    const bad = [
      { ...newUser(), type: 'PERSON' },
      { ...newUser(), externalUserId: '' },
      { ...newUser(), alias: 'x'.repeat(101) },
      { ...newUser(), email: 42 },
    ];
    for (const b of bad) {
      const err = await capaError(c.createUser(b as never));
      expect(err).toMatchObject({ status: 400, code: 'INVALID_USER_INPUT_ERROR', capaMessage: 'Invalid User Input', retryable: false });
      expect(describeCapaError(err)).toMatch(/^Capa rejected the input: Invalid User Input \(.+\)$/);
    }
    expect(calls('createUser')).toEqual({ '400': bad.length });
  });

  it('400 BAD_REQUEST "Provided email is not valid"', async () => {
    const err = await capaError(client().createUser(newUser({ email: 'ana@nodot' })));
    expect(err).toMatchObject({ status: 400, code: 'BAD_REQUEST', capaMessage: 'Provided email is not valid' });
    expect(describeCapaError(err)).toBe('Capa rejected the input: Provided email is not valid');
    expect(totalCalls('createUser')).toBe(1);
  });
});

describe('authentication', () => {
  it('401 "API Key is missing" when the header is absent', async () => {
    // The client refuses an empty key, so strip the header on the way out (still real HTTP).
    const stripping: typeof fetch = (input, init) => {
      const headers = { ...(init?.headers as Record<string, string>) };
      delete headers['partner-api-key'];
      return fetch(input, { ...init, headers });
    };
    const err = await capaError(client({ fetch: stripping }).createUser(newUser()));
    expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED', capaMessage: 'API Key is missing', retryable: false });
    expect(describeCapaError(err)).toBe('Capa rejected our API key; check CAPA_API_KEY.');
    expect(calls('createUser')).toEqual({ '401': 1 });
  });

  it('401 "Invalid API Key format"', async () => {
    const err = await capaError(client({ apiKey: 'bad key!' }).getKycDetails('x'));
    expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED', capaMessage: 'Invalid API Key format' });
    expect(totalCalls('getKycDetails')).toBe(1);
  });

  it('401 "Invalid API Key"', async () => {
    const err = await capaError(client({ apiKey: 'unknown-partner-key' }).setWebhookSettings(null));
    expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED', capaMessage: 'Invalid API Key' });
    expect(totalCalls('setWebhookSettings')).toBe(1);
  });

  it('401 "User is not associated with the partner" for another partner\'s user (link and details)', async () => {
    const { userId } = await client({ apiKey: OTHER_KEY }).createUser(newUser());
    const c = client();
    const e1 = await capaError(c.generateKycLink(userId, { country: 'MX' }));
    expect(e1).toMatchObject({ status: 401, code: 'UNAUTHORIZED', capaMessage: 'User is not associated with the partner' });
    expect(describeCapaError(e1)).toBe('This user belongs to another Capa partner (or the API key is wrong).');
    const e2 = await capaError(c.getKycDetails(userId));
    expect(e2).toMatchObject({ status: 401, capaMessage: 'User is not associated with the partner' });
    expect(totalCalls('generateKycLink')).toBe(1);
  });
});

describe('generateKycLink', () => {
  it('returns a single-session link on the sandbox (201)', async () => {
    const c = client();
    const { userId } = await c.createUser(newUser());
    const { kycLink } = await c.generateKycLink(userId, { country: 'MX', partnerRedirectUri: 'https://admin.example.com/kyc/return' });
    expect(kycLink).toMatch(new RegExp(`^${sandbox.url}/kyc/session/[0-9a-f]{32}$`));
    expect(calls('generateKycLink')).toEqual({ '201': 1 });
    const page = await fetch(kycLink);
    expect(page.status).toBe(200);
  });

  it('accepts custom app schemes and (sandbox allowance) http://localhost', async () => {
    const c = client();
    const { userId } = await c.createUser(newUser());
    await expect(c.generateKycLink(userId, { country: 'DO', partnerRedirectUri: 'myapp://kyc/done' })).resolves.toHaveProperty('kycLink');
    await expect(c.generateKycLink(userId, { country: 'DO', partnerRedirectUri: 'http://localhost:3000/back' })).resolves.toHaveProperty(
      'kycLink',
    );
    await expect(c.generateKycLink(userId, { country: 'MX' })).resolves.toHaveProperty('kycLink');
  });

  it('400 INVALID_USER_INPUT_ERROR for a country other than MX/DO or a bad redirect URI', async () => {
    const c = client();
    const { userId } = await c.createUser(newUser());
    for (const opts of [
      { country: 'US' },
      { country: 'MX', partnerRedirectUri: 'http://example.com/back' },
      { country: 'MX', partnerRedirectUri: 'javascript:alert(1)' },
      { country: 'MX', partnerRedirectUri: 'not a url' },
    ]) {
      const err = await capaError(c.generateKycLink(userId, opts as never));
      expect(err).toMatchObject({ status: 400, code: 'INVALID_USER_INPUT_ERROR' });
    }
    expect(calls('generateKycLink')).toEqual({ '400': 4 });
  });

  it('400 INVALID_VERIFICATION_TYPE_FOR_USER for a BUSINESS user', async () => {
    const c = client();
    const { userId } = await c.createUser(newUser({ type: 'BUSINESS' }));
    const err = await capaError(c.generateKycLink(userId, { country: 'MX' }));
    expect(err).toMatchObject({ status: 400, code: 'INVALID_VERIFICATION_TYPE_FOR_USER' });
    expect(err.capaMessage).toMatch(/can only request KYB verification/);
    expect(describeCapaError(err)).toMatch(/business users need KYB/);
  });

  it('404 NOT_FOUND_ERROR for an unknown user, not retried', async () => {
    const err = await capaError(client().generateKycLink('5b0c7d8e-2f3a-4c1b-9e77-0a1b2c3d4e5f', { country: 'MX' }));
    expect(err).toMatchObject({ status: 404, code: 'NOT_FOUND_ERROR', capaMessage: 'Requested User was not found', retryable: false });
    expect(describeCapaError(err)).toBe('Capa does not know this user.');
    expect(calls('generateKycLink')).toEqual({ '404': 1 });
  });
});

describe('getKycDetails', () => {
  it('returns null before any KYC (404 NOT_FOUND_ERROR "Requested KYC verification was not found")', async () => {
    const c = client();
    const { userId } = await c.createUser(newUser());
    await expect(c.getKycDetails(userId)).resolves.toBeNull();
    expect(calls('getKycDetails')).toEqual({ '404': 1 });
  });

  it('throws (does not return null) for an unknown user', async () => {
    const err = await capaError(client().getKycDetails('00000000-0000-4000-8000-000000000000'));
    expect(err).toMatchObject({ status: 404, code: 'NOT_FOUND_ERROR', capaMessage: 'Requested User was not found' });
  });

  it('unwraps the {status:"ok"} envelope into an AiPrise-shaped record consistent with the outcome', async () => {
    const c = client();
    const { userId } = await c.createUser(newUser({ alias: 'Ana García Ruiz' }));
    await c.generateKycLink(userId, { country: 'MX' });
    sandbox.setOutcome(userId, 'VERIFIED');
    const d = await c.getKycDetails(userId);
    expect(d?.aipriseSummary?.verificationResult).toBe('VERIFIED');
    expect(d?.clientReferenceId).toBe(userId);
    expect(d?.idInfo).toMatchObject({
      fullName: 'ANA GARCIA RUIZ',
      idType: 'INE',
      status: 'APPROVED',
      result: 'PASSED',
      issueCountryCode: 'MX',
    });
    expect(d?.clientReferenceData?.personalInfo?.taxId).toMatch(/^[A-Z]{4}\d{6}[A-Z0-9]{3}$/);
    expect(d?.faceMatchInfo?.status).toBe('APPROVED');
    expect(d?.amlInfo?.numHits).toBe(0);
    expect(Date.parse(d!.createdAt!)).not.toBeNaN();
    const media = await fetch(d!.media!.frontIdImageUrl!);
    expect(media.status).toBe(200);
    expect(media.headers.get('content-type')).toBe('image/png'); // the sandbox serves real pictures
  });

  it('rejected and review-needed records carry matching per-check statuses; raw override is passed through', async () => {
    const c = client();
    const a = await c.createUser(newUser());
    sandbox.setOutcome(a.userId, 'REJECTED');
    const rejected = await c.getKycDetails(a.userId);
    expect(rejected?.aipriseSummary?.verificationResult).toBe('REJECTED');
    expect(rejected?.faceMatchInfo).toMatchObject({ status: 'DECLINED', result: 'FAILED' });
    expect(rejected?.faceMatchInfo?.statusReasons?.[0]?.code).toBe('FACE_MISMATCH');

    const b = await c.createUser(newUser());
    sandbox.setOutcome(b.userId, 'REVIEW_NEEDED');
    const review = await c.getKycDetails(b.userId);
    expect(review?.aipriseSummary?.verificationResult).toBe('REVIEW_NEEDED');
    expect(review?.amlInfo?.numHits).toBe(1);
    expect(review?.fraudInsights?.status).toBe('REVIEW_NEEDED');

    const d = await c.createUser(newUser());
    sandbox.setOutcome(d.userId, 'VERIFIED', { verificationResult: 'APPROVED' });
    expect((await c.getKycDetails(d.userId))?.aipriseSummary?.verificationResult).toBe('APPROVED');
  });
});

describe('webhook settings and notification log', () => {
  it("PUT /webhook-settings returns the settings with Capa's space-separated timestamps", async () => {
    const c = client();
    const s = await c.setWebhookSettings('https://admin.example.com/hooks/capa');
    expect(s).toMatchObject({ url: 'https://admin.example.com/hooks/capa', partnerId: sandbox.partners()[0]!.partnerId });
    expect(s.createdAt).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/);
    expect(s.updatedAt).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/);
    const off = await c.setWebhookSettings(null);
    expect(off.url).toBeNull();
    expect(off.id).toBe(s.id);
    expect(calls('setWebhookSettings')).toEqual({ '200': 2 });
  });

  it('400 INVALID_USER_INPUT_ERROR for a non-http URL', async () => {
    const err = await capaError(client().setWebhookSettings('ftp://example.com/x'));
    expect(err).toMatchObject({ status: 400, code: 'INVALID_USER_INPUT_ERROR' });
  });

  it('lists, filters and pages notifications; gets one; 404 NOT_FOUND for an unknown id', async () => {
    const c = client();
    await c.setWebhookSettings(null); // events are then recorded NOT_SENT, no delivery needed
    for (let i = 0; i < 3; i++) {
      const { userId } = await c.createUser(newUser());
      sandbox.setOutcome(userId, 'VERIFIED');
    }
    const all = await c.listWebhookNotifications();
    expect(all).toMatchObject({ count: 6, total: 6 });
    expect(all.data[0]).toMatchObject({ status: 'NOT_SENT', retryAttempts: 0, manualRetryCount: 0 });
    expect(all.data.map((n) => n.eventType).sort()).toEqual([
      'CREATED_KYC',
      'CREATED_KYC',
      'CREATED_KYC',
      'VERIFIED_USER',
      'VERIFIED_USER',
      'VERIFIED_USER',
    ]);
    expect(all.data[0]!.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);

    const page = await c.listWebhookNotifications({ skip: 4, limit: 5 });
    expect(page).toMatchObject({ count: 2, total: 6 });
    expect(await c.listWebhookNotifications({ status: 'SENT' })).toMatchObject({ count: 0, total: 0, data: [] });

    const detail = await c.getWebhookNotification(all.data[0]!.id);
    expect(detail).toMatchObject({ id: all.data[0]!.id, status: 'NOT_SENT', latestErrorPayload: null, lastManualRetryAt: null });
    expect(detail.payload).toMatchObject({ type: 'KYC', event: all.data[0]!.eventType });

    const err = await capaError(c.getWebhookNotification('00000000-0000-4000-8000-000000000000'));
    expect(err).toMatchObject({ status: 404, code: 'NOT_FOUND', capaMessage: 'Webhook notification not found' });
    expect(describeCapaError(err)).toBe('Capa has no webhook notification with this id.');

    // Another partner cannot see this partner's notifications.
    await expect(client({ apiKey: OTHER_KEY }).getWebhookNotification(all.data[0]!.id)).rejects.toMatchObject({ status: 404 });
  });

  it('400 INVALID_USER_INPUT_ERROR for a bad list query (limit > 100, unknown status)', async () => {
    const c = client();
    await expect(c.listWebhookNotifications({ limit: 101 })).rejects.toMatchObject({ status: 400, code: 'INVALID_USER_INPUT_ERROR' });
    await expect(c.listWebhookNotifications({ status: 'LOST' as never })).rejects.toMatchObject({ status: 400 });
    expect(calls('listWebhookNotifications')).toEqual({ '400': 2 });
  });

  it('retry of a notification that is not FAILED → 409 CONFLICT, not retried by the client', async () => {
    const c = client();
    await c.setWebhookSettings(null);
    const { userId } = await c.createUser(newUser());
    const { notificationIds } = sandbox.setOutcome(userId, 'PENDING');
    const err = await capaError(c.retryWebhookNotification(notificationIds[0]!));
    expect(err).toMatchObject({ status: 409, code: 'CONFLICT', capaMessage: 'Notification is not in FAILED status' });
    expect(describeCapaError(err)).toBe('Capa refused: Notification is not in FAILED status');
    expect(calls('retryWebhookNotification')).toEqual({ '409': 1 });
  });

  it("an unknown path is a 404 with Capa's not-found shape (there is no GET /users)", async () => {
    const res = await fetch(`${sandbox.url}/api/partner/v2/users`, { headers: { 'partner-api-key': KEY } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ success: false, error: { code: 'NOT_FOUND', message: 'Cannot GET /api/partner/v2/users' } });
  });

  it('malformed JSON → 400 INVALID_USER_INPUT_ERROR', async () => {
    const res = await fetch(`${sandbox.url}/api/partner/v2/users`, {
      method: 'POST',
      headers: { 'partner-api-key': KEY, 'content-type': 'application/json' },
      body: '{"type":',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ success: false, error: { code: 'INVALID_USER_INPUT_ERROR', message: 'Invalid User Input' } });
  });
});

describe('retries', () => {
  it('retries a 500 and succeeds; the sandbox saw both calls', async () => {
    const infos: CapaCallInfo[] = [];
    const c = client({
      onCall: (i) => {
        infos.push(i);
        if (i.status === 500) sandbox.setFaults({}); // the next attempt goes through
      },
    });
    sandbox.setFaults({ errorRate: 1 });
    const { userId } = await c.createUser(newUser());
    expect(userId).toBeTruthy();
    expect(calls('createUser')).toEqual({ '500': 1, '201': 1 });
    expect(infos.map((i) => [i.attempt, i.status, i.outcome])).toEqual([
      [1, 500, 'http_error'],
      [2, 201, 'ok'],
    ]);
  });

  it('gives up after maxRetries on persistent 5xx and says so in plain words', async () => {
    sandbox.setFaults({ errorRate: 1 });
    const err = await capaError(client({ maxRetries: 3 }).createUser(newUser()));
    expect(err).toMatchObject({
      status: 500,
      code: 'INTERNAL_SERVER_ERROR',
      capaMessage: 'User creation failed',
      retryable: true,
      attempts: 4,
    });
    expect(describeCapaError(err)).toBe('Capa had an internal error.');
    expect(calls('createUser')).toEqual({ '500': 4 });
    expect(sandbox.stats().injected500).toBe(4);
  });

  it('honours Retry-After on 429 and then succeeds', async () => {
    const infos: CapaCallInfo[] = [];
    const c = client({
      onCall: (i) => {
        infos.push(i);
        if (i.status === 429) sandbox.setFaults({});
      },
    });
    sandbox.setFaults({ rate429: 1, retryAfterSec: 0.3 });
    const started = Date.now();
    await c.createUser(newUser());
    // Full-jitter backoff here is ≤ 5 ms, so only Retry-After explains a ≥ 250 ms gap.
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(calls('createUser')).toEqual({ '429': 1, '201': 1 });
    expect(sandbox.stats().sent429).toBe(1);
    expect(infos.map((i) => i.status)).toEqual([429, 201]);
  });

  it('throws at once when Retry-After exceeds maxRetryAfterMs', async () => {
    sandbox.setFaults({ rate429: 1, retryAfterSec: 60 });
    const err = await capaError(client({ maxRetryAfterMs: 30_000 }).createUser(newUser()));
    expect(err).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS', retryable: true, retryAfterMs: 60_000, attempts: 1 });
    expect(describeCapaError(err)).toBe('Capa is rate-limiting us; retrying after 60 s.');
    expect(calls('createUser')).toEqual({ '429': 1 });
  });

  it('throws after exhausting retries on persistent 429', async () => {
    sandbox.setFaults({ rate429: 1, retryAfterSec: 0.01 });
    const err = await capaError(client({ maxRetries: 2 }).getKycDetails('x'));
    expect(err).toMatchObject({ status: 429, attempts: 3 });
    expect(calls('getKycDetails')).toEqual({ '429': 3 });
  });

  it('gets through a token-bucket rate limit by backing off', async () => {
    sandbox.setFaults({ rateLimitPerSec: 5, retryAfterSec: 0.25 });
    const c = client({ maxRetries: 20 });
    const results = await Promise.all(Array.from({ length: 12 }, () => c.createUser(newUser())));
    expect(new Set(results.map((r) => r.userId)).size).toBe(12);
    expect(calls('createUser')['201']).toBe(12);
    expect(calls('createUser')['429']).toBeGreaterThan(0);
  });

  it('never retries 400, 401, 404 or 409 (exactly one call each)', async () => {
    const c = client({ maxRetries: 3 });
    const u = newUser();
    const { userId } = await c.createUser(u);
    await capaError(c.createUser({ ...u, type: 'nope' as never })); // 400
    await capaError(client({ apiKey: 'unknown-partner-key' }).generateKycLink(userId, { country: 'MX' })); // 401
    await capaError(c.getWebhookNotification('00000000-0000-4000-8000-000000000000')); // 404
    await capaError(c.createUser(u)); // 409
    expect(calls('createUser')).toEqual({ '201': 1, '400': 1, '409': 1 });
    expect(calls('generateKycLink')).toEqual({ '401': 1 });
    expect(calls('getWebhookNotification')).toEqual({ '404': 1 });
  });

  it('times out with kind "timeout", retries timeouts, and reports each attempt', async () => {
    sandbox.setFaults({ latencyMs: 1_000 });
    const infos: CapaCallInfo[] = [];
    const err = await capaError(client({ timeoutMs: 100, maxRetries: 1, onCall: (i) => infos.push(i) }).getKycDetails('x'));
    expect(err).toMatchObject({ kind: 'timeout', code: 'TIMEOUT', status: null, retryable: true, attempts: 2 });
    expect(describeCapaError(err)).toBe('Capa did not answer in time; the request will be retried.');
    expect(infos.map((i) => [i.attempt, i.outcome, i.status])).toEqual([
      [1, 'timeout', null],
      [2, 'timeout', null],
    ]);
  });

  it('network errors are kind "network" and retried', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((r) => closed.close(() => r()));
    const infos: CapaCallInfo[] = [];
    const c = new CapaClient({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: KEY,
      baseDelayMs: 1,
      maxRetries: 2,
      onCall: (i) => infos.push(i),
    });
    const err = await capaError(c.createUser(newUser()));
    expect(err).toMatchObject({ kind: 'network', code: 'NETWORK_ERROR', status: null, retryable: true, attempts: 3 });
    expect(infos.map((i) => i.outcome)).toEqual(['network_error', 'network_error', 'network_error']);
  });
});

describe('envelopes and error bodies the sandbox does not produce', () => {
  let server: http.Server;
  let base = '';
  let next: { status: number; body: string; headers?: Record<string, string> } = { status: 200, body: '{}' };
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
      res.end(next.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  });
  const c = () => new CapaClient({ baseUrl: base, apiKey: KEY, maxRetries: 0 });

  it('accepts a bare object and the {status:"ok"} envelope on create', async () => {
    next = { status: 201, body: '{"userId":"u-bare"}' };
    await expect(c().createUser(newUser())).resolves.toEqual({ userId: 'u-bare' });
    next = { status: 201, body: '{"status":"ok","data":{"kycLink":"https://p.example/s/1"}}' };
    await expect(c().generateKycLink('u', { country: 'MX' })).resolves.toEqual({ kycLink: 'https://p.example/s/1' });
  });

  it('keeps the inner data array of a bare notification list', async () => {
    next = { status: 200, body: '{"count":1,"total":7,"data":[{"id":"n1","status":"SENT"}]}' };
    await expect(c().listWebhookNotifications()).resolves.toMatchObject({ count: 1, total: 7, data: [{ id: 'n1' }] });
  });

  it('reads code/message from top-level fields and from error.name', async () => {
    next = { status: 400, body: '{"code":"BAD_REQUEST","message":"top level"}' };
    await expect(c().createUser(newUser())).rejects.toMatchObject({ code: 'BAD_REQUEST', capaMessage: 'top level' });
    next = { status: 403, body: '{"success":false,"error":{"name":"INVALID_PARTNER_FLOW","message":"The partner has an invalid flow."}}' };
    const err = await capaError(c().createUser(newUser()));
    expect(err).toMatchObject({ status: 403, code: 'INVALID_PARTNER_FLOW', capaMessage: 'The partner has an invalid flow.' });
    expect(describeCapaError(err)).toMatch(/invalid partner flow/);
  });

  it('a 2xx without the expected field is INVALID_RESPONSE; a non-JSON error keeps its text', async () => {
    next = { status: 201, body: '{"success":true,"data":{}}' };
    await expect(c().createUser(newUser())).rejects.toMatchObject({ code: 'INVALID_RESPONSE', retryable: false });
    next = { status: 502, body: '<html>bad gateway</html>' };
    await expect(c().createUser(newUser())).rejects.toMatchObject({
      status: 502,
      code: 'HTTP_502',
      capaMessage: '<html>bad gateway</html>',
      retryable: true,
    });
  });

  it('a route-less 404 on the notification log reads as "feature not offered"', async () => {
    next = { status: 404, body: '{"message":"Cannot GET /api/partner/v2/webhook-notifications","error":"Not Found","statusCode":404}' };
    const err = await capaError(c().listWebhookNotifications());
    expect(describeCapaError(err)).toBe('This Capa environment does not offer the webhook notification log.');
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0.5')).toBe(500);
    const now = Date.parse('2026-01-15T10:30:00Z');
    expect(parseRetryAfter('Thu, 15 Jan 2026 10:30:07 GMT', now)).toBe(7000);
    expect(parseRetryAfter('Thu, 15 Jan 2026 10:29:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('honours an HTTP-date Retry-After end to end', async () => {
    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      if (hits === 1) {
        res.writeHead(429, { 'retry-after': new Date(Date.now() + 1500).toUTCString() });
        res.end('{"success":false,"error":{"code":"TOO_MANY_REQUESTS","message":"Rate limit exceeded. Try again in a few seconds."}}');
      } else {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"success":true,"data":{"userId":"after-date"}}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const started = Date.now();
      const c = new CapaClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: KEY, baseDelayMs: 1 });
      await expect(c.createUser(newUser())).resolves.toEqual({ userId: 'after-date' });
      // HTTP-dates have 1 s resolution, so the wait is somewhere in (0.5 s, 1.5 s].
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      expect(hits).toBe(2);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  });
});

describe('describeCapaError', () => {
  it('handles non-Capa errors', () => {
    expect(describeCapaError(new Error('boom'))).toBe('Unexpected error while talking to Capa: boom');
  });
});

describe('capaErrorCode', () => {
  const capa = (init: Partial<ConstructorParameters<typeof CapaError>[0]>) =>
    new CapaError({ status: 400, code: 'BAD_REQUEST', capaMessage: 'x', kind: 'http', retryable: false, op: 'getKycDetails', ...init });

  it('gives the code and values the console words, and describeCapaError is its English', () => {
    const cases: Array<[unknown, ReturnType<typeof capaErrorCode>]> = [
      [capa({ kind: 'timeout', status: null }), { code: 'timeout', values: {} }],
      [capa({ status: 429, retryAfterMs: 1500 }), { code: 'rate_limited_for', values: { seconds: 2 } }],
      [capa({ status: 409, op: 'createUser', attempts: 2 }), { code: 'already_exists_after_retry', values: {} }],
      [
        capa({ status: 409, op: 'retryWebhookNotification', capaMessage: 'Not FAILED' }),
        { code: 'refused', values: { capaMessage: 'Not FAILED' } },
      ],
      [capa({ status: 404, code: 'NOT_FOUND_ERROR', capaMessage: 'User was not found' }), { code: 'unknown_user', values: {} }],
      [
        capa({ status: 418, code: 'TEAPOT', capaMessage: 'short and stout' }),
        { code: 'http', values: { status: 418, capaCode: 'TEAPOT', capaMessage: 'short and stout' } },
      ],
      [new Error('boom'), { code: 'unexpected', values: { detail: 'boom' } }],
    ];
    for (const [err, want] of cases) {
      expect(capaErrorCode(err)).toEqual(want);
      // Stored English reads back as the same code (values as text): old rows are worded too.
      const back = capaErrorCodeOfText(describeCapaError(err));
      expect(back).toEqual({ code: want.code, values: Object.fromEntries(Object.entries(want.values).map(([k, v]) => [k, String(v)])) });
    }
    expect(capaErrorCodeOfText('Capa rejected the input: Invalid User Input (email: not valid; country: missing)')).toEqual({
      code: 'invalid_input_details',
      values: { capaMessage: 'Invalid User Input', details: 'email: not valid; country: missing' },
    });
    expect(capaErrorCodeOfText('connect ECONNREFUSED 127.0.0.1:6379')).toBeNull();
  });
});
