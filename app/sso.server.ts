import { createCookie } from '@remix-run/node';
import { appendAudit } from '../db/repositories/audit.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import {
  findOperatorByEmail,
  findOperatorBySubject,
  linkOperatorSubject,
  recordLoginSuccess,
  setOperatorRole,
} from '../db/repositories/operators.js';
import { revokeOperatorSessions } from '../db/repositories/sessions.js';
import { anySession, clientIp, safeNext, startSession } from './auth.server';
import {
  isSsoFailure,
  beginAuthorization,
  completeAuthorization,
  mappedRole,
  oidcEnabled,
  providerSignOutUrl,
  SsoError,
  verifiedEmail,
  type OidcFlow,
  type SsoFailure,
} from './oidc.server';
import { createSsoOperator } from './operator-accounts.server';
import { services } from './services.server';

/**
 * Single sign-on for the console's routes: /auth/oidc sends the browser to the provider with a
 * flow cookie (state, nonce, PKCE verifier, where to go afterwards), /auth/oidc/callback finishes
 * it. The person is matched by the provider's subject, else by a verified e-mail (the subject is
 * then remembered); the role comes from OIDC_ROLE_MAP when set; unknown or unmapped people are
 * refused, and every refusal is audited with its reason.
 */

export { isSsoFailure };

let cookieCache: { key: string; cookie: ReturnType<typeof createCookie> } | undefined;

/** Ten minutes to sign in at the provider; the cookie says where the browser started. */
async function flowCookie() {
  const { env } = await services();
  const production = env.NODE_ENV === 'production';
  const key = `${production}|${env.sessionSecret}`;
  if (cookieCache?.key !== key) {
    cookieCache = {
      key,
      // Lax: the provider brings the browser back with a top-level GET from its own site.
      cookie: createCookie(production ? '__Host-kyc_oidc' : 'kyc_oidc', {
        httpOnly: true,
        sameSite: 'lax',
        secure: production,
        path: '/',
        maxAge: 600,
        secrets: [env.sessionSecret],
      }),
    };
  }
  return cookieCache.cookie;
}

export interface SsoOffer {
  enabled: boolean;
  /** OIDC_DISPLAY_NAME, or null for the generic wording. */
  displayName: string | null;
  /** Password sign-in is for the break-glass admins only. */
  ssoOnly: boolean;
}

/** What the sign-in page offers. */
export async function ssoOffer(): Promise<SsoOffer> {
  const { env } = await services();
  return { enabled: await oidcEnabled(), displayName: env.OIDC_DISPLAY_NAME ?? null, ssoOnly: env.SSO_ONLY };
}

async function auditSso(
  request: Request,
  outcome: 'ok' | 'denied',
  who: { operatorId?: string | null; actor?: string | null; subject?: string | null },
  detail: Record<string, unknown>,
) {
  const { db } = await services();
  await appendAudit(db, {
    operatorId: who.operatorId ?? null,
    actor: who.actor || 'anonymous',
    action: AUDIT_ACTIONS.authSso,
    targetType: 'sso',
    targetId: who.subject ?? null,
    outcome,
    detail,
    ip: clientIp(request),
  });
}

export type SsoStart = { ok: true; location: string; headers: Headers } | { ok: false; reason: SsoFailure };

/** Starts a sign-in at the provider (GET /auth/oidc?next=…). */
export async function startSso(request: Request): Promise<SsoStart> {
  if (!(await oidcEnabled())) return { ok: false, reason: 'not_configured' };
  const next = safeNext(new URL(request.url).searchParams.get('next'));
  try {
    const { url, flow } = await beginAuthorization();
    const headers = new Headers({ 'Set-Cookie': await (await flowCookie()).serialize({ ...flow, next }) });
    return { ok: true, location: url, headers };
  } catch (err) {
    const { logger } = await services();
    logger.warn({ err: (err as Error).message }, 'single sign-on could not start: the provider did not answer discovery');
    await auditSso(request, 'denied', {}, { reason: 'provider_unreachable', stage: 'start' });
    return { ok: false, reason: 'provider_unreachable' };
  }
}

export type SsoFinish = { ok: true; next: string; headers: Headers } | { ok: false; reason: SsoFailure; headers: Headers };

/** Finishes the sign-in the provider sent the browser back from (GET /auth/oidc/callback). */
export async function finishSso(request: Request): Promise<SsoFinish> {
  const cookie = await flowCookie();
  // The flow cookie serves one callback, whatever its outcome.
  const headers = new Headers({ 'Set-Cookie': await cookie.serialize('', { maxAge: 0, expires: new Date(0) }) });
  const url = new URL(request.url);
  const refuse = async (reason: SsoFailure, who: Parameters<typeof auditSso>[2] = {}, detail: Record<string, unknown> = {}) => {
    await auditSso(request, 'denied', who, { reason, ...detail });
    return { ok: false as const, reason, headers };
  };

  if (!(await oidcEnabled())) return refuse('not_configured');
  const flow = (await cookie.parse(request.headers.get('cookie'))) as (OidcFlow & { next: string }) | null;
  if (!flow || typeof flow !== 'object' || typeof flow.state !== 'string') return refuse('no_flow');
  const error = url.searchParams.get('error');
  if (error) return refuse(url.searchParams.get('state') === flow.state ? 'provider_error' : 'state_mismatch', {}, { error });

  let identity;
  try {
    identity = await completeAuthorization(url.search, flow);
  } catch (err) {
    if (err instanceof SsoError) return refuse(err.reason, {}, err.detail);
    throw err;
  }
  const { claims, issuer } = identity;
  const subject = String(claims.sub);
  const email = verifiedEmail(claims);
  const who = { actor: email ?? (typeof claims.email === 'string' ? claims.email : null), subject };
  const role = await mappedRole(claims);
  const { db, env } = await services();

  let op = await findOperatorBySubject(db, issuer, subject);
  if (!op && email) {
    const byEmail = await findOperatorByEmail(db, email);
    if (byEmail?.oidcSubject && byEmail.oidcIssuer === issuer) {
      // The address belongs to another person at the provider (a reused mailbox): never merge them.
      return refuse('subject_mismatch', { ...who, operatorId: byEmail.id });
    }
    if (byEmail) {
      await linkOperatorSubject(db, byEmail.id, issuer, subject);
      op = byEmail;
    }
  }
  if (op && role === null) {
    // Their role was taken away at the provider: whatever sessions they still hold end too.
    const ended = await revokeOperatorSessions(db, op.id);
    return refuse('unmapped', { ...who, operatorId: op.id }, { sessionsEnded: ended });
  }
  if (!op) {
    if (!env.OIDC_JIT) return refuse(email ? 'unknown_operator' : 'email_unverified', who);
    if (!email) return refuse('email_unverified', who);
    if (!role) return refuse('unmapped', who);
    const name = typeof claims.name === 'string' && claims.name.trim() ? claims.name : email;
    op = await createSsoOperator(db, { email, name, role, issuer, subject });
    await appendAudit(db, {
      operatorId: op.id,
      actor: op.email,
      action: AUDIT_ACTIONS.operatorSsoCreate,
      targetType: 'operator',
      targetId: op.id,
      outcome: 'ok',
      detail: { role, by: 'provider' },
      ip: clientIp(request),
    });
  }
  if (op.disabled) return refuse('operator_disabled', { ...who, operatorId: op.id });
  if (role && role !== op.role) {
    await setOperatorRole(db, op.id, role);
    await appendAudit(db, {
      operatorId: op.id,
      actor: op.email,
      action: AUDIT_ACTIONS.operatorSsoRole,
      targetType: 'operator',
      targetId: op.id,
      outcome: 'ok',
      detail: { from: op.role, to: role, by: 'provider' },
      ip: clientIp(request),
    });
  }

  const session = await startSession(request, op.id, { stage: 'full', method: 'oidc', oidcTokens: identity.tokens });
  await recordLoginSuccess(db, op.id);
  headers.append('Set-Cookie', session.get('Set-Cookie')!);
  await auditSso(request, 'ok', { operatorId: op.id, actor: op.email, subject }, { role: role ?? op.role });
  return { ok: true, next: safeNext(flow.next), headers };
}

/**
 * Where sign-out sends the browser: the provider's end-session page for a single sign-on session
 * when the provider has one (its own session ends too), else null (our sign-in page).
 */
export async function signOutDestination(request: Request): Promise<string | null> {
  const live = await anySession(request);
  return live ? providerSignOutUrl(live.session.oidcTokens) : null;
}
