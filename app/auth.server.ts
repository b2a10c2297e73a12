import { timingSafeEqual } from 'node:crypto';
import { createCookie, redirect } from '@remix-run/node';
import type { Role } from '../db/schema.js';
import { appendAudit, auditOutcomesForTarget } from '../db/repositories/audit.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { findOperatorByEmail, recordLoginFailure, recordLoginSuccess } from '../db/repositories/operators.js';
import { createSession, findLiveSession, revokeSession, type LiveSession, type SessionPolicy } from '../db/repositories/sessions.js';
import { normalizeEmail } from '../domain/email.js';
import { verifyPassword } from '../lib/password.js';
import { isoAgo } from '../lib/time.js';
import { services } from './services.server';
import { CLIENT_ADDRESS_HEADER } from '../lib/client-address.js';
import { readLimitedBody } from '../lib/body.js';

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

/** The signed-in operator, or null (never redirects). */
export async function currentSession(request: Request): Promise<LiveSession | null> {
  const id = await cookieSessionId(request);
  if (!id) return null;
  const { db } = await services();
  return findLiveSession(db, id, await policy());
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

async function deny(request: Request, who: SignedIn | null, action: string, reason: string, status = 403): Promise<Response> {
  const { db } = await services();
  const url = new URL(request.url);
  await appendAudit(db, {
    operatorId: who?.operator.id ?? null,
    actor: who?.operator.email ?? 'anonymous',
    action,
    targetType: 'route',
    targetId: `${request.method} ${url.pathname}`,
    outcome: 'denied',
    detail: { reason },
    ip: clientIp(request),
  });
  return new Response(reason, {
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
    throw await deny(
      request,
      who,
      'access.denied',
      `Your role (${who.operator.role}) cannot do this; it needs ${minRole}. Ask an admin if you need access.`,
    );
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
    throw await deny(
      request,
      who,
      'csrf.refused',
      'This form was sent from another site (or without an Origin header) and was refused. Reload the page and try again.',
    );
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
      `This form is larger than ${Math.floor(limit / 1024 / 1024)} MB and was refused before it was read. To import more customers, split the CSV file and upload the parts one by one.`,
      413,
    );
  }
  if (!token || !tokensEqual(token, who.session.csrfToken)) {
    throw await deny(
      request,
      who,
      'csrf.refused',
      'This form is out of date (its security token does not match your session). Reload the page and try again.',
    );
  }
  if (!roleAtLeast(who.operator.role, minRole)) {
    throw await deny(
      request,
      who,
      'access.denied',
      `Your role (${who.operator.role}) cannot do this; it needs ${minRole}. Ask an admin if you need access.`,
    );
  }
  return { ...who, form: form ?? new FormData() };
}

// ---------------------------------------------------------------- sign-in / sign-out

/** Failed sign-ins for one e-mail inside this window slow down further attempts. */
const THROTTLE_WINDOW_MS = 15 * 60_000;
const FREE_ATTEMPTS = 4;
const MAX_WAIT_MS = 15 * 60_000;

/** How long the next attempt for this e-mail must wait (0 = allowed now), from the audit log. */
export async function loginWaitMs(email: string, now = Date.now()): Promise<number> {
  const { db } = await services();
  const rows = await auditOutcomesForTarget(db, {
    targetType: 'login',
    targetId: normalizeEmail(email),
    since: isoAgo(THROTTLE_WINDOW_MS, now),
    limit: 50,
  });
  let failures = 0;
  for (const r of rows) {
    if (r.outcome === 'ok') break; // a success resets the count
    failures++;
  }
  if (failures < FREE_ATTEMPTS) return 0;
  const wait = Math.min(MAX_WAIT_MS, 2 ** (failures - FREE_ATTEMPTS) * 2_000);
  const last = Date.parse(rows[0]!.at);
  return Math.max(0, last + wait - now);
}

export type SignInResult = { ok: true; headers: Headers } | { ok: false; error: string; status: number };

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

  const wait = await loginWaitMs(email);
  if (wait > 0) {
    await audit('denied', 'throttled', null, 'login-throttled');
    return {
      ok: false,
      status: 429,
      error: `Too many failed sign-ins for this e-mail. Wait ${Math.ceil(wait / 1000)} seconds and try again.`,
    };
  }
  const op = await findOperatorByEmail(db, email);
  // verifyPassword always runs scrypt (against a decoy for unknown e-mails): same timing either way.
  const good = await verifyPassword(password, op?.passwordHash ?? null);
  if (!op || !good || op.disabled) {
    if (op) await recordLoginFailure(db, op.id);
    await audit('denied', !op ? 'unknown email' : op.disabled && good ? 'operator disabled' : 'wrong password', op?.id ?? null);
    return { ok: false, status: 401, error: 'That e-mail and password do not match an active operator.' };
  }

  // Rotate: whatever session this browser had ends here; the new one gets a fresh id and token.
  const previous = await cookieSessionId(request);
  if (previous) await revokeSession(db, previous);
  const s = await createSession(db, { operatorId: op.id, userAgent: request.headers.get('user-agent'), ip }, await policy());
  await recordLoginSuccess(db, op.id);
  await audit('ok', null, op.id);
  const headers = new Headers({ 'Set-Cookie': await (await sessionCookie()).serialize(s.id) });
  return { ok: true, headers };
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

/** Starts a session for an operator just created (first-admin setup). */
export async function sessionHeadersFor(request: Request, operatorId: string): Promise<Headers> {
  const { db } = await services();
  const s = await createSession(db, { operatorId, userAgent: request.headers.get('user-agent'), ip: clientIp(request) }, await policy());
  return new Headers({ 'Set-Cookie': await (await sessionCookie()).serialize(s.id) });
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
