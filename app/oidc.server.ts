import * as oidc from 'openid-client';
import { appendAudit } from '../db/repositories/audit.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { decryptJson, encryptJson } from '../db/encryption.js';
import { setOperatorRole } from '../db/repositories/operators.js';
import { claimOidcCheck, revokeOperatorSessions, storeOidcTokens, type LiveSession } from '../db/repositories/sessions.js';
import type { Role } from '../db/schema.js';
import { roleFromClaims } from '../domain/sso-roles.js';
import { services } from './services.server';

/**
 * The OpenID Connect relying party: discovery, the authorization code flow with PKCE, state and
 * nonce, the ID token's checks (signature included: openid-client skips it for tokens fetched
 * over TLS unless non-repudiation checks are on, and a console of identity documents wants it),
 * the re-check of a signed-in person at the provider, and the provider's sign-out. Knows nothing
 * about our sessions' cookies; app/sso.server.ts and app/auth.server.ts use it.
 */

/** Why a single sign-on was refused: stored in the audit log and worded on the sign-in page. */
export const SSO_FAILURES = [
  'not_configured',
  'no_flow',
  'state_mismatch',
  'provider_error',
  'provider_unreachable',
  'token_exchange_failed',
  'id_token_signature',
  'id_token_issuer',
  'id_token_audience',
  'id_token_nonce',
  'id_token_expired',
  'id_token_invalid',
  'email_unverified',
  'unknown_operator',
  'subject_mismatch',
  'unmapped',
  'operator_disabled',
] as const;
export type SsoFailure = (typeof SSO_FAILURES)[number];
export const isSsoFailure = (v: unknown): v is SsoFailure => typeof v === 'string' && (SSO_FAILURES as readonly string[]).includes(v);

export class SsoError extends Error {
  constructor(
    readonly reason: SsoFailure,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(`single sign-on refused: ${reason}`);
    this.name = 'SsoError';
  }
}

/** What the flow cookie holds between /auth/oidc and the callback. */
export interface OidcFlow {
  state: string;
  nonce: string;
  verifier: string;
}

/** The provider's tokens kept with a session (encrypted at rest like KYC details). */
interface StoredTokens {
  refreshToken: string | null;
  idToken: string | null;
}

export const CALLBACK_PATH = '/auth/oidc/callback';

let cached: { key: string; config: Promise<oidc.Configuration> } | undefined;

export async function oidcEnabled(): Promise<boolean> {
  const { env } = await services();
  return Boolean(env.OIDC_ISSUER && env.OIDC_CLIENT_ID);
}

/** The provider's configuration from its discovery document, fetched once (again after a failure). */
async function configuration(): Promise<oidc.Configuration> {
  const { env } = await services();
  if (!env.OIDC_ISSUER || !env.OIDC_CLIENT_ID) throw new SsoError('not_configured');
  const key = `${env.OIDC_ISSUER}|${env.OIDC_CLIENT_ID}|${env.OIDC_CLIENT_SECRET ?? ''}`;
  if (cached?.key !== key) {
    const issuer = new URL(env.OIDC_ISSUER);
    const config = oidc.discovery(
      issuer,
      env.OIDC_CLIENT_ID,
      env.OIDC_CLIENT_SECRET,
      env.OIDC_CLIENT_SECRET ? oidc.ClientSecretBasic(env.OIDC_CLIENT_SECRET) : oidc.None(),
      {
        // Plain http only for a provider on this machine or a test network; production refuses it (lib/config.ts).
        execute: [...(issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : []), oidc.enableNonRepudiationChecks],
        timeout: 10,
      },
    );
    const entry = { key, config };
    cached = entry;
    config.catch(() => {
      if (cached === entry) cached = undefined;
    });
  }
  return cached.config;
}

/** Tests point the console at a new provider between files. */
export function forgetOidcConfiguration(): void {
  cached = undefined;
}

/** Sorts openid-client's refusals into the reasons we audit. */
export function classifyOidcError(err: unknown): SsoFailure {
  if (err instanceof SsoError) return err.reason;
  if (err instanceof oidc.AuthorizationResponseError) return 'provider_error';
  if (err instanceof oidc.ResponseBodyError) return 'token_exchange_failed';
  if (err instanceof oidc.ClientError) {
    const inner = err.cause as { message?: string; cause?: { claim?: string } } | undefined;
    const claim = inner?.cause?.claim;
    switch (err.code) {
      case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
        if (claim === 'iss') return 'id_token_issuer';
        if (claim === 'aud' || claim === 'azp') return 'id_token_audience';
        if (claim === 'nonce') return 'id_token_nonce';
        return 'id_token_invalid';
      case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
        return claim === 'exp' || claim === 'iat' ? 'id_token_expired' : 'id_token_invalid';
      case 'OAUTH_KEY_SELECTION_FAILED':
        return 'id_token_signature';
      case 'OAUTH_INVALID_RESPONSE':
        return /signature/i.test(inner?.message ?? '') ? 'id_token_signature' : 'id_token_invalid';
      case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
        return 'state_mismatch';
      case 'OAUTH_TIMEOUT':
      case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
      case 'OAUTH_RESPONSE_IS_NOT_JSON':
        return 'provider_unreachable';
      default:
        return 'id_token_invalid';
    }
  }
  return 'provider_unreachable';
}

/** Where to send the browser to sign in at the provider, and what to remember until it comes back. */
export async function beginAuthorization(): Promise<{ url: string; flow: OidcFlow }> {
  const { env } = await services();
  const config = await configuration();
  const verifier = oidc.randomPKCECodeVerifier();
  const flow: OidcFlow = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier };
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: `${env.publicUrl}${CALLBACK_PATH}`,
    scope: env.OIDC_SCOPES,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: flow.state,
    nonce: flow.nonce,
  });
  return { url: url.href, flow };
}

export interface ProviderIdentity {
  issuer: string;
  claims: Record<string, unknown>;
  /** Encrypted tokens to keep with the session. */
  tokens: string;
}

function topClaim(path: string): string {
  return path.split('.')[0]!;
}

/**
 * The person's claims: the ID token's, completed from the UserInfo endpoint when the e-mail or
 * the role claim is not in the token (many providers put groups and e-mail only there).
 */
async function claimsOf(config: oidc.Configuration, idClaims: Record<string, unknown>, accessToken: string | undefined) {
  const { env } = await services();
  const wanted = ['email', topClaim(env.OIDC_ROLE_CLAIM)];
  if (wanted.every((c) => c in idClaims) || !accessToken || !config.serverMetadata().userinfo_endpoint) return idClaims;
  const info = await oidc.fetchUserInfo(config, accessToken, String(idClaims.sub));
  // The signed ID token wins where both say something.
  return { ...(info as Record<string, unknown>), ...idClaims };
}

async function sealTokens(t: StoredTokens): Promise<string> {
  const { dataKeys } = await services();
  return encryptJson(t, dataKeys[0]).payload;
}

async function openTokens(payload: string): Promise<StoredTokens | null> {
  const { dataKeys } = await services();
  try {
    return decryptJson<StoredTokens>(payload, dataKeys);
  } catch {
    return null;
  }
}

/**
 * Finishes the flow the provider sent the browser back from: the code exchanged with the PKCE
 * verifier, the ID token checked (signature, issuer, audience, nonce, expiry) and the state
 * compared with the one this browser was given. Throws SsoError with the reason.
 */
export async function completeAuthorization(search: string, flow: OidcFlow): Promise<ProviderIdentity> {
  const { env } = await services();
  const params = new URLSearchParams(search);
  if (params.get('state') !== flow.state) throw new SsoError('state_mismatch');
  let config: oidc.Configuration;
  try {
    config = await configuration();
  } catch (err) {
    throw new SsoError(classifyOidcError(err), { error: (err as Error).message });
  }
  // The URL the provider redirected to, as registered there (the request may have reached us
  // through a proxy under another name).
  const current = new URL(`${env.publicUrl}${CALLBACK_PATH}?${params.toString()}`);
  try {
    const tokens = await oidc.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims() as Record<string, unknown> | undefined;
    if (!idClaims) throw new SsoError('id_token_invalid');
    const claims = await claimsOf(config, idClaims, tokens.access_token);
    return {
      issuer: config.serverMetadata().issuer,
      claims,
      tokens: await sealTokens({ refreshToken: tokens.refresh_token ?? null, idToken: tokens.id_token ?? null }),
    };
  } catch (err) {
    if (err instanceof SsoError) throw err;
    const e = err as { error?: string; message?: string; code?: string };
    throw new SsoError(classifyOidcError(err), { error: e.error ?? e.code ?? e.message ?? String(err) });
  }
}

/** The console role the provider's claims give (null: none), or undefined when roles are kept in the console. */
export async function mappedRole(claims: Record<string, unknown>): Promise<Role | null | undefined> {
  const { env } = await services();
  if (env.OIDC_ROLE_MAP.length === 0) return undefined;
  return roleFromClaims(claims, env.OIDC_ROLE_CLAIM, env.OIDC_ROLE_MAP);
}

/**
 * A verified e-mail: `email_verified` when the provider says it; Microsoft Entra says nothing
 * for work accounts, and its optional `xms_edov` claim (the domain owner verified the address)
 * stands in. Anything else is not matched to an operator.
 */
export function verifiedEmail(claims: Record<string, unknown>): string | null {
  const email = typeof claims.email === 'string' ? claims.email : null;
  if (!email) return null;
  const verified =
    'email_verified' in claims ? claims.email_verified === true || claims.email_verified === 'true' : claims.xms_edov === true;
  return verified ? email : null;
}

/**
 * Re-checks a single sign-on session at the provider when it is due (OIDC_RECHECK_SECONDS): the
 * refresh token is exchanged and the role mapped again. A provider that refuses (the person was
 * deactivated, their sessions revoked) or claims that no longer map to a role end every session
 * of the operator at once; a changed role takes effect on this request. A provider that cannot be
 * reached leaves the session alone until the next check (an outage must not sign everyone out).
 * Returns the session as it now stands, or null when it ended.
 */
export async function recheckAtProvider(live: LiveSession, ip: string | null): Promise<LiveSession | null> {
  const { env, db, logger } = await services();
  const s = live.session;
  if (!s.oidcTokens || !env.OIDC_ISSUER) return live;
  const last = s.oidcCheckedAt ? Date.parse(s.oidcCheckedAt) : 0;
  if (env.OIDC_RECHECK_SECONDS > 0 && last + env.OIDC_RECHECK_SECONDS * 1000 > Date.now()) return live;
  if (!(await claimOidcCheck(db, s.idHash, s.oidcCheckedAt))) return live;
  const stored = await openTokens(s.oidcTokens);
  if (!stored?.refreshToken) return live;

  const end = async (reason: SsoFailure | 'refresh_refused', detail: Record<string, unknown>) => {
    const ended = await revokeOperatorSessions(db, live.operator.id);
    await appendAudit(db, {
      operatorId: live.operator.id,
      actor: live.operator.email,
      action: AUDIT_ACTIONS.authSsoRecheck,
      targetType: 'operator',
      targetId: live.operator.id,
      outcome: 'denied',
      detail: { reason, sessionsEnded: ended, ...detail },
      ip,
    });
    return null;
  };

  let claims: Record<string, unknown>;
  try {
    const config = await configuration();
    const tokens = await oidc.refreshTokenGrant(config, stored.refreshToken);
    const idClaims = (tokens.claims() as Record<string, unknown> | undefined) ?? { sub: undefined };
    claims = tokens.claims() ? await claimsOf(config, idClaims, tokens.access_token) : await userinfoOnly(config, tokens.access_token);
    await storeOidcTokens(
      db,
      s.idHash,
      await sealTokens({ refreshToken: tokens.refresh_token ?? stored.refreshToken, idToken: tokens.id_token ?? stored.idToken }),
    );
  } catch (err) {
    if (err instanceof oidc.ResponseBodyError) return end('refresh_refused', { error: err.error });
    logger.warn(
      { err: (err as Error).message, operatorId: live.operator.id },
      'could not re-check a single sign-on session at the provider',
    );
    return live;
  }

  const role = await mappedRole(claims);
  if (role === undefined || role === live.operator.role) return live;
  if (role === null) return end('unmapped', {});
  await setOperatorRole(db, live.operator.id, role);
  await appendAudit(db, {
    operatorId: live.operator.id,
    actor: live.operator.email,
    action: AUDIT_ACTIONS.operatorSsoRole,
    targetType: 'operator',
    targetId: live.operator.id,
    outcome: 'ok',
    detail: { from: live.operator.role, to: role, by: 'provider' },
    ip,
  });
  return { ...live, operator: { ...live.operator, role } };
}

async function userinfoOnly(config: oidc.Configuration, accessToken: string | undefined): Promise<Record<string, unknown>> {
  if (!accessToken || !config.serverMetadata().userinfo_endpoint) return {};
  return (await oidc.fetchUserInfo(config, accessToken, oidc.skipSubjectCheck)) as Record<string, unknown>;
}

/**
 * Where to end the person's session at the provider too (RP-initiated logout), when the provider
 * offers it; the provider sends the browser back to our sign-in page.
 */
export async function providerSignOutUrl(oidcTokens: string | null): Promise<string | null> {
  if (!oidcTokens) return null;
  const { env } = await services();
  const config = await configuration().catch(() => null);
  if (!config?.serverMetadata().end_session_endpoint) return null;
  const stored = await openTokens(oidcTokens);
  return oidc.buildEndSessionUrl(config, {
    post_logout_redirect_uri: `${env.publicUrl}/login`,
    ...(stored?.idToken ? { id_token_hint: stored.idToken } : {}),
  }).href;
}
