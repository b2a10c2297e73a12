import { timingSafeEqual } from 'node:crypto';
import { createCookie, redirect } from '@remix-run/node';
import type { Role } from '../db/schema.js';
import { appendAudit, auditOutcomesForTarget, auditRefusalsFromIp } from '../db/repositories/audit.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { factorSummaries } from '../db/repositories/factors.js';
import { findOperatorByEmail, recordLoginFailure, recordLoginSuccess } from '../db/repositories/operators.js';
import {
  createSession,
  findLiveSession,
  revokeSession,
  revokeSessionByHash,
  type LiveSession,
  type SessionPolicy,
} from '../db/repositories/sessions.js';
import type { Operator, SessionStage } from '../db/schema.js';
import { normalizeEmail } from '../domain/email.js';
import { verifyPassword } from '../lib/password.js';
import { isoAgo } from '../lib/time.js';
import { getFixedT } from './i18n';
import { localeForOperator } from './locale.server';
import { services } from './services.server';
import { CLIENT_ADDRESS_HEADER } from '../lib/client-address.js';
import { readLimitedBody } from '../lib/body.js';
import { recheckAtProvider } from './oidc.server';
import { BACKGROUND_HEADER } from './activity';

/**
 * Sign-in, sessions, roles and CSRF for the console. Contract used by every route:
 *   requireOperator(request, minRole)  — first line of every loader
 *   requireMutation(request, minRole)  — first line of every action (adds the CSRF checks)
 */

export type { Role };
export interface SignedIn {
  operator: { id: string; email: string; name: string; role: Role };
  session: { csrfToken: string };
}

const RANK: Record<Role, number> = { viewer: 0, compliance: 1, admin: 2 };
export const roleAtLeast = (role: Role, min: Role): boolean => RANK[role] >= RANK[min];
/** Viewers see masked document numbers, tax ids, birth dates, addresses, media links, e-mails. */
export const canSeePii = (role: Role): boolean => RANK[role] >= RANK.compliance;

let cookieCache: { key: string; cookie: ReturnType<typeof createCookie> } | undefined;

async function sessionCookie() {
  const { env } = await services();
  const production = env.NODE_ENV === 'production';
  const key = `${production}|${env.sessionSecret}|${env.SESSION_MAX_HOURS}`;
  if (cookieCache?.key !== key) {
    cookieCache = {
      key,
      // __Host- : the browser only accepts it over HTTPS, for this exact host, path "/".
      cookie: createCookie(production ? '__Host-kyc_session' : 'kyc_session', {
        httpOnly: true,
        // Lax so links into the console (e-mail, chat) keep the session; state-changing requests
        // are protected separately by Origin + token (SameSite alone is not enough).
        sameSite: 'lax',
        secure: production,
        path: '/',
        maxAge: env.SESSION_MAX_HOURS * 3600,
        secrets: [env.sessionSecret],
      }),
    };
  }
  return cookieCache.cookie;
}

async function policy(): Promise<SessionPolicy> {
  const { env } = await services();
  return { idleMs: env.SESSION_IDLE_MINUTES * 60_000, maxMs: env.SESSION_MAX_HOURS * 3_600_000 };
}

/**
 * The client's address for the audit log and sessions, as server/web.ts determined it (see
 * lib/client-address.ts). Never read from X-Forwarded-For directly: its left-most entry is
 * whatever the client chose to send. Null when the build is served by another server.
 */
export function clientIp(request: Request): string | null {
  const ip = request.headers.get(CLIENT_ADDRESS_HEADER);
  return ip ? ip.slice(0, 64) : null;
}

async function cookieSessionId(request: Request): Promise<string | null> {
  const value = await (await sessionCookie()).parse(request.headers.get('cookie'));
  return typeof value === 'string' && value.length > 20 ? value : null;
}

/**
 * Requests a page makes on its own (polling for progress) carry this header (app/activity.ts
 * marks them): they are answered, but they do not count as the operator being active, so an
 * open page left alone still reaches the idle timeout.
 */
export { BACKGROUND_HEADER };

/** The browser's session at whatever stage, or null; single sign-on sessions are re-checked at the provider when due. */
async function liveSession(request: Request): Promise<LiveSession | null> {
  const id = await cookieSessionId(request);
  if (!id) return null;
  const { db } = await services();
  const live = await findLiveSession(db, id, await policy(), { touch: request.headers.get(BACKGROUND_HEADER) !== '1' });
  if (!live || live.session.method !== 'oidc') return live;
  return recheckAtProvider(live, clientIp(request));
}

/** The signed-in operator, or null (never redirects). A session still waiting for its second factor is not signed in. */
export async function currentSession(request: Request): Promise<LiveSession | null> {
  const live = await liveSession(request);
  return live && live.session.stage === 'full' ? live : null;
}

/** A session whose password was accepted and that waits for its second factor (`mfa`) or for one to be set up (`enrol`). */
export async function pendingSession(request: Request): Promise<LiveSession | null> {
  const live = await liveSession(request);
  return live && live.session.stage !== 'full' ? live : null;
}

/** The session behind this request at any stage (the second-factor pages serve both). */
export async function anySession(request: Request): Promise<LiveSession | null> {
  return liveSession(request);
}

function toSignedIn(live: LiveSession): SignedIn {
  const { id, email, name, role } = live.operator;
  return { operator: { id, email, name, role }, session: { csrfToken: live.session.csrfToken } };
}

/** A relative path to come back to after sign-in; anything else becomes "/". */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  return next;
}

function loginRedirect(request: Request): Response {
  const url = new URL(request.url);
  const back = request.method === 'GET' ? `${url.pathname}${url.search}` : url.pathname;
  return redirect(`/login?next=${encodeURIComponent(back)}`);
}

/** Why a request was refused: a key of the `common` catalogue's `errors.denied` and its values. */
type Denial = { code: 'role' | 'cross_site' | 'stale_form' | 'too_large' | 'too_large_mb'; values?: Record<string, string | number> };

async function deny(request: Request, who: SignedIn | null, action: string, why: Denial, status = 403): Promise<Response> {
  const { db } = await services();
  const url = new URL(request.url);
  const key = `errors.denied.${why.code}`;
  await appendAudit(db, {
    operatorId: who?.operator.id ?? null,
    actor: who?.operator.email ?? 'anonymous',
    action,
    targetType: 'route',
    targetId: `${request.method} ${url.pathname}`,
    outcome: 'denied',
    // The audit log keeps the English words it always kept; the person reads them in their language.
    detail: { reason: getFixedT('en', 'common')(key, why.values) },
    ip: clientIp(request),
  });
  const { locale } = await localeForOperator(request, who?.operator.id ?? null);
  return new Response(getFixedT(locale, 'common')(key, why.values), {
    status,
    statusText: status === 403 ? 'Forbidden' : undefined,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}

export async function requireOperator(request: Request, minRole: Role): Promise<SignedIn> {
  const live = await currentSession(request);
  if (!live) throw loginRedirect(request);
  const who = toSignedIn(live);
  if (!roleAtLeast(who.operator.role, minRole)) {
    throw await deny(request, who, 'access.denied', { code: 'role', values: { role: who.operator.role, needed: minRole } });
  }
  return who;
}

const allowedOrigins = async (request: Request): Promise<Set<string>> => {
  const { env } = await services();
  return new Set([new URL(request.url).origin, new URL(env.publicUrl).origin]);
};

/** The request comes from one of our own pages: Origin (or, without it, Referer) is ours. */
export async function sameOrigin(request: Request): Promise<boolean> {
  if (request.headers.get('sec-fetch-site') === 'cross-site') return false;
  const allowed = await allowedOrigins(request);
  const origin = request.headers.get('origin');
  if (origin) return allowed.has(origin);
  const referer = request.headers.get('referer');
  if (!referer) return false;
  try {
    return allowed.has(new URL(referer).origin);
  } catch {
    return false;
  }
}

function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Reads a form at most `limit` bytes deep: a larger body is refused before it is held in memory,
 * whatever its Content-Length says (or does not say). A body that is not a form, or does not
 * parse, gives `form: null`.
 */
async function readLimitedForm(request: Request, limit: number): Promise<{ form: FormData | null; tooLarge: boolean }> {
  const type = request.headers.get('content-type') ?? '';
  if (!/application\/x-www-form-urlencoded|multipart\/form-data/i.test(type)) return { form: null, tooLarge: false };
  const body = await readLimitedBody(request, limit).catch(() => Buffer.alloc(0));
  if (body === null) return { form: null, tooLarge: true };
  try {
    return { form: await new Response(body as unknown as BodyInit, { headers: { 'content-type': type } }).formData(), tooLarge: false };
  } catch {
    return { form: null, tooLarge: false };
  }
}

/** The CSRF token sent with a form, read from a clone so the action can still read the body. */
async function submittedToken(
  request: Request,
  limit: number,
): Promise<{ token: string | null; form: FormData | null; tooLarge: boolean }> {
  const header = request.headers.get('x-csrf-token');
  const { form, tooLarge } = await readLimitedForm(request.clone(), limit);
  if (tooLarge) return { token: header, form: null, tooLarge };
  const field = form?.get('csrf');
  return { token: header ?? (typeof field === 'string' ? field : null), form, tooLarge: false };
}

/**
 * The forms anyone may post before signing in (/login, /setup) hold a few short fields: e-mail,
 * name, password (200 characters at most), a token and a return path. 16 KiB leaves ample room for
 * those and keeps an anonymous caller from making the server read or buffer anything large.
 */
export const PUBLIC_FORM_MAX_BYTES = 16 * 1024;

/**
 * Reads a form posted before sign-in, at most PUBLIC_FORM_MAX_BYTES deep. A larger one is
 * refused (413, audited) before it is read to the end; anything that is not a form reads as an
 * empty form, which the route's own validation then rejects.
 */
export async function readPublicForm(request: Request): Promise<{ ok: true; form: FormData } | { ok: false; status: 413; error: string }> {
  const { form, tooLarge } = await readLimitedForm(request, PUBLIC_FORM_MAX_BYTES);
  if (!tooLarge) return { ok: true, form: form ?? new FormData() };
  const { db } = await services();
  await appendAudit(db, {
    actor: 'anonymous',
    action: AUDIT_ACTIONS.requestTooLarge,
    targetType: 'route',
    targetId: `${request.method} ${new URL(request.url).pathname}`,
    outcome: 'denied',
    detail: { limit: PUBLIC_FORM_MAX_BYTES },
    ip: clientIp(request),
  });
  return {
    ok: false,
    status: 413,
    error: `This form is larger than ${PUBLIC_FORM_MAX_BYTES / 1024} KB and was refused before it was read. Reload the page and try again.`,
  };
}

/**
 * Guard for actions: signed in, request from our own origin, the session's CSRF token in the
 * body (`csrf`) or header (`x-csrf-token`), and the role. Returns the parsed form as a convenience
 * (the request body stays readable: the form is read from a clone).
 */
export async function requireMutation(request: Request, minRole: Role): Promise<SignedIn & { form: FormData }> {
  const live = await currentSession(request);
  if (!live) throw loginRedirect(request);
  const who = toSignedIn(live);
  if (!(await sameOrigin(request))) {
    throw await deny(request, who, 'csrf.refused', { code: 'cross_site' });
  }
  const { env } = await services();
  // The largest form any page sends is a CSV upload; allow its limit plus room for the fields.
  const limit = env.IMPORT_MAX_BYTES + 1024 * 1024;
  const { token, form, tooLarge } = await submittedToken(request, limit);
  if (tooLarge) {
    throw await deny(
      request,
      who,
      AUDIT_ACTIONS.requestTooLarge,
      { code: 'too_large_mb', values: { mb: Math.floor(limit / 1024 / 1024) } },
      413,
    );
  }
  if (!token || !tokensEqual(token, who.session.csrfToken)) {
    throw await deny(request, who, 'csrf.refused', { code: 'stale_form' });
  }
  if (!roleAtLeast(who.operator.role, minRole)) {
    throw await deny(request, who, 'access.denied', { code: 'role', values: { role: who.operator.role, needed: minRole } });
  }
  return { ...who, form: form ?? new FormData() };
}

/**
 * For the second-factor pages, which serve sessions that are not signed in yet: the browser's
 * session at one of `stages`, or a redirect to the sign-in page.
 */
export async function requireSession(request: Request, stages: readonly SessionStage[]): Promise<LiveSession> {
  const live = await liveSession(request);
  if (!live || !stages.includes(live.session.stage)) throw loginRedirect(request);
  return live;
}

/**
 * requireSession for a form post: our Origin and the session's CSRF token too (these pages hand
 * the token out themselves; a pending session has no root data). Returns the parsed form.
 */
export async function requireSessionMutation(
  request: Request,
  stages: readonly SessionStage[],
): Promise<{ live: LiveSession; form: FormData }> {
  const live = await requireSession(request, stages);
  const who = toSignedIn(live);
  if (!(await sameOrigin(request))) {
    throw await deny(request, who, 'csrf.refused', { code: 'cross_site' });
  }
  const { token, form, tooLarge } = await submittedToken(request, PUBLIC_FORM_MAX_BYTES);
  if (tooLarge) throw await deny(request, who, AUDIT_ACTIONS.requestTooLarge, { code: 'too_large' }, 413);
  if (!token || !tokensEqual(token, live.session.csrfToken)) {
    throw await deny(request, who, 'csrf.refused', { code: 'stale_form' });
  }
  return { live, form: form ?? new FormData() };
}

// ---------------------------------------------------------------- sign-in / sign-out

/** Failed sign-ins for one e-mail inside this window slow down further attempts. */
const THROTTLE_WINDOW_MS = 15 * 60_000;
const FREE_ATTEMPTS = 4;
const MAX_WAIT_MS = 15 * 60_000;
/**
 * One client address may fail this many sign-ins and second-factor checks (over any accounts)
 * inside the window before it is slowed down too: the per-account limit alone lets one machine
 * try a password against every e-mail in turn. Generous, since an office shares one address.
 */
const IP_FREE_ATTEMPTS = 20;
/** Second-factor codes: an account gets this many wrong ones inside the window, then waits. */
const MFA_FREE_ATTEMPTS = 5;

function backoff(failures: number, free: number, lastAt: string, now: number): number {
  if (failures < free) return 0;
  const wait = Math.min(MAX_WAIT_MS, 2 ** (failures - free) * 2_000);
  return Math.max(0, Date.parse(lastAt) + wait - now);
}

/** How long the next attempt against one target must wait (0 = now), from the audit log; a success resets the count. */
async function targetWaitMs(targetType: string, targetId: string, free: number, now = Date.now()): Promise<number> {
  const { db } = await services();
  const rows = await auditOutcomesForTarget(db, { targetType, targetId, since: isoAgo(THROTTLE_WINDOW_MS, now), limit: 50 });
  let failures = 0;
  for (const r of rows) {
    if (r.outcome === 'ok') break;
    failures++;
  }
  return failures ? backoff(failures, free, rows[0]!.at, now) : 0;
}

/** How long the next attempt for this e-mail must wait (0 = allowed now), from the audit log. */
export async function loginWaitMs(email: string, now = Date.now()): Promise<number> {
  return targetWaitMs('login', normalizeEmail(email), FREE_ATTEMPTS, now);
}

/** How long the next second-factor attempt of this operator must wait. */
export async function mfaWaitMs(operatorId: string, now = Date.now()): Promise<number> {
  return targetWaitMs('mfa', operatorId, MFA_FREE_ATTEMPTS, now);
}

/** How long the next sign-in or second-factor attempt from this client address must wait. */
export async function addressWaitMs(ip: string | null, now = Date.now()): Promise<number> {
  if (!ip) return 0;
  const { db } = await services();
  const rows = await auditRefusalsFromIp(db, { ip, targetTypes: ['login', 'mfa'], since: isoAgo(THROTTLE_WINDOW_MS, now), limit: 200 });
  return rows.length ? backoff(rows.length, IP_FREE_ATTEMPTS, rows[0]!.at, now) : 0;
}

/** A refusal worded by the page: a code of the `auth` catalogue and its values. */
export interface AuthRefusal {
  ok: false;
  status: number;
  code: string;
  values?: Record<string, string | number>;
  /** English wording, for pages not yet reading the code. */
  error: string;
}

export type SignInResult = { ok: true; headers: Headers; stage: SessionStage } | AuthRefusal;

/** Whether password sign-in is open to this e-mail (SSO_ONLY leaves it to the break-glass admins). */
export async function passwordSignInAllowed(email: string): Promise<boolean> {
  const { env } = await services();
  if (!env.SSO_ONLY) return true;
  return env.SSO_BREAK_GLASS_EMAIL.some((e) => normalizeEmail(e) === normalizeEmail(email));
}

/**
 * What a password sign-in opens: a session waiting for the second factor when the operator has
 * one, one that must set one up when their role requires it (MFA_REQUIRED), else a signed-in one.
 */
async function stageAfterPassword(op: Pick<Operator, 'id' | 'role'>): Promise<SessionStage> {
  const { db, env } = await services();
  const f = (await factorSummaries(db, [op.id])).get(op.id);
  if (f && (f.totp || f.passkeys > 0)) return 'mfa';
  return env.mfaRequired.includes(op.role) ? 'enrol' : 'full';
}

export async function signIn(request: Request, emailRaw: string, password: string): Promise<SignInResult> {
  const { db } = await services();
  const email = normalizeEmail(emailRaw);
  const ip = clientIp(request);
  // Throttled attempts are audited under their own target type so they do not extend the wait
  // (otherwise anyone could keep an operator locked out by hammering the form).
  const audit = (outcome: 'ok' | 'denied', reason: string | null, operatorId: string | null, targetType = 'login') =>
    appendAudit(db, {
      operatorId,
      actor: email || 'anonymous',
      action: 'auth.login',
      targetType,
      targetId: email,
      outcome,
      detail: reason ? { reason } : null,
      ip,
    });

  const wait = Math.max(await loginWaitMs(email), await addressWaitMs(ip));
  if (wait > 0) {
    await audit('denied', 'throttled', null, 'login-throttled');
    const seconds = Math.ceil(wait / 1000);
    return {
      ok: false,
      status: 429,
      code: 'login.throttled',
      values: { seconds },
      error: `Too many failed sign-ins. Wait ${seconds} seconds and try again.`,
    };
  }
  if (!(await passwordSignInAllowed(email))) {
    await audit('denied', 'sso only', null);
    return {
      ok: false,
      status: 403,
      code: 'login.sso_only',
      error: 'Password sign-in is turned off: sign in with single sign-on.',
    };
  }
  const op = await findOperatorByEmail(db, email);
  // verifyPassword always runs scrypt (against a decoy for unknown e-mails and for operators who
  // have no password, signing in through the provider only): same timing either way.
  const good = await verifyPassword(password, op?.passwordHash || null);
  if (!op || !good || op.disabled) {
    if (op) await recordLoginFailure(db, op.id);
    await audit('denied', !op ? 'unknown email' : op.disabled && good ? 'operator disabled' : 'wrong password', op?.id ?? null);
    return { ok: false, status: 401, code: 'login.no_match', error: 'That e-mail and password do not match an active operator.' };
  }

  const stage = await stageAfterPassword(op);
  const headers = await startSession(request, op.id, { stage, method: stage === 'full' ? 'password' : null });
  if (stage === 'full') await recordLoginSuccess(db, op.id);
  await audit('ok', null, op.id);
  return { ok: true, headers, stage };
}

/**
 * Opens a session for an operator in this browser and returns its cookie. Whatever session the
 * browser had ends here (rotation: a new id and token, so a fixed or stolen pre-sign-in cookie
 * is worth nothing).
 */
export async function startSession(
  request: Request,
  operatorId: string,
  opts: { stage?: SessionStage; method?: string | null; oidcTokens?: string | null } = {},
): Promise<Headers> {
  const { db } = await services();
  const previous = await cookieSessionId(request);
  if (previous) await revokeSession(db, previous);
  const s = await createSession(
    db,
    { operatorId, userAgent: request.headers.get('user-agent'), ip: clientIp(request), ...opts },
    await policy(),
  );
  return new Headers({ 'Set-Cookie': await (await sessionCookie()).serialize(s.id) });
}

/** A pending session whose second factor was given becomes a signed-in one (a new session: rotation again). */
export async function completeSignIn(request: Request, pending: LiveSession, method: string): Promise<Headers> {
  const { db } = await services();
  await revokeSessionByHash(db, pending.session.idHash);
  await recordLoginSuccess(db, pending.operator.id);
  return startSession(request, pending.operator.id, { stage: 'full', method });
}

/** Ends the session server-side (a copied cookie stops working too) and clears the cookie. */
export async function signOut(request: Request, who: SignedIn | null): Promise<Headers> {
  const { db } = await services();
  const id = await cookieSessionId(request);
  if (id) await revokeSession(db, id);
  if (who) {
    await appendAudit(db, {
      operatorId: who.operator.id,
      actor: who.operator.email,
      action: 'auth.logout',
      targetType: 'operator',
      targetId: who.operator.id,
      outcome: 'ok',
      ip: clientIp(request),
    });
  }
  return new Headers({ 'Set-Cookie': await (await sessionCookie()).serialize('', { maxAge: 0, expires: new Date(0) }) });
}

/** Starts a signed-in session for an operator (tests, and the operator just created by first-admin setup). */
export async function sessionHeadersFor(request: Request, operatorId: string): Promise<Headers> {
  const { db } = await services();
  const s = await createSession(
    db,
    { operatorId, userAgent: request.headers.get('user-agent'), ip: clientIp(request), method: 'password' },
    await policy(),
  );
  return new Headers({ 'Set-Cookie': await (await sessionCookie()).serialize(s.id) });
}

/** The session cookie's id hash of this request, to tell "this device" apart in a list of sessions. */
export async function currentSessionHash(request: Request): Promise<string | null> {
  return (await liveSession(request))?.session.idHash ?? null;
}

/** The session policy (idle and absolute limits) for listings. */
export async function sessionPolicy(): Promise<SessionPolicy> {
  return policy();
}

/** Writes one audit entry for an operator action. */
export async function auditAction(
  request: Request,
  who: SignedIn,
  entry: {
    action: string;
    targetType: string;
    targetId: string | null;
    outcome: 'ok' | 'error' | 'denied' | 'queued';
    detail?: Record<string, unknown> | null;
  },
): Promise<void> {
  const { db } = await services();
  await appendAudit(db, { operatorId: who.operator.id, actor: who.operator.email, ip: clientIp(request), ...entry });
}
