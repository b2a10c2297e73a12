import { createHash, randomInt } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { generateSecret, generateURI, verify as verifyOtp } from 'otplib';
import QRCode from 'qrcode';
import { appendAudit } from '../db/repositories/audit.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { decryptJson, encryptJson } from '../db/encryption.js';
import {
  acceptTotpStep,
  deleteAllFactors,
  deletePasskey,
  deleteTotp,
  factorSummaries,
  findPasskey,
  insertPasskey,
  passkeysFor,
  putPendingTotp,
  recordPasskeyUse,
  replaceRecoveryCodes,
  totpFor,
  unusedRecoveryCodeCount,
  spendRecoveryCode,
  type FactorSummary,
} from '../db/repositories/factors.js';
import { findOperatorById, operatorsLinkedToProvider } from '../db/repositories/operators.js';
import {
  listLiveSessions,
  liveSessionCounts,
  revokeOperatorSessions,
  setSessionChallenge,
  takeSessionChallenge,
  type LiveSession,
} from '../db/repositories/sessions.js';
import { addressWaitMs, clientIp, completeSignIn, mfaWaitMs, sessionPolicy, type SignedIn } from './auth.server';
import { services } from './services.server';

/**
 * Second factors: TOTP (an authenticator app, enrolled by QR code or by the secret typed in),
 * WebAuthn passkeys, and ten one-time recovery codes. Used at sign-in (a session waiting at the
 * `mfa` stage), to set one up (the `enrol` stage, or /account), and by admins to reset a person's
 * factors. Outcomes are codes of the `auth` and `account` catalogues; the pages word them.
 */

const ISSUER = 'KYC Desk';
/** One 30-second step either side: phones whose clock drifts a little still work. */
const TOTP_TOLERANCE_SECONDS = 30;
const RECOVERY_CODES = 10;
/** Crockford's base32 alphabet: no I, L, O or U to misread. 16 characters = 80 bits per code. */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export type MfaOutcome =
  { ok: true; headers?: Headers; recoveryCodes?: string[] } | { ok: false; code: string; values?: Record<string, number> };

// ------------------------------------------------------------------ helpers

async function sealSecret(secret: string): Promise<string> {
  const { dataKeys } = await services();
  return encryptJson(secret, dataKeys[0]).payload;
}

async function openSecret(payload: string): Promise<string> {
  const { dataKeys } = await services();
  return decryptJson<string>(payload, dataKeys);
}

async function relyingParty(): Promise<{ rpID: string; origin: string }> {
  const { env } = await services();
  const url = new URL(env.publicUrl);
  return { rpID: url.hostname, origin: url.origin };
}

/** A recovery code as typed: case, spaces and dashes do not matter, and 0/O, 1/I/L are the same. */
function normalizeRecoveryCode(raw: string): string {
  return raw.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
}

/** The time step a TOTP code belongs to (one step either side of now accepted), or null when it is wrong. */
async function totpStep(secret: string, code: string): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  const r = await verifyOtp({ secret, token: code, epochTolerance: TOTP_TOLERANCE_SECONDS });
  return r.valid && 'timeStep' in r ? r.timeStep : null;
}

const recoveryHash = (operatorId: string, code: string) =>
  createHash('sha256')
    .update(`${operatorId}:${normalizeRecoveryCode(code)}`)
    .digest('hex');

function newRecoveryCode(): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  return s.match(/.{4}/g)!.join('-');
}

/** Ten new recovery codes, shown once; the old ones stop working. */
async function issueRecoveryCodes(operatorId: string): Promise<string[]> {
  const { db } = await services();
  const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
  await replaceRecoveryCodes(
    db,
    operatorId,
    codes.map((c) => recoveryHash(operatorId, c)),
  );
  return codes;
}

async function auditMfa(
  request: Request,
  op: { id: string; email: string },
  outcome: 'ok' | 'denied',
  detail: Record<string, unknown>,
  action: string = AUDIT_ACTIONS.authMfa,
) {
  const { db } = await services();
  // Sign-in attempts are counted per operator (target `mfa`) by the throttle; changes to one's
  // factors are filed under the operator.
  await appendAudit(db, {
    operatorId: op.id,
    actor: op.email,
    action,
    targetType: action === AUDIT_ACTIONS.authMfa ? 'mfa' : 'operator',
    targetId: op.id,
    outcome,
    detail,
    ip: clientIp(request),
  });
}

async function throttled(request: Request, operatorId: string): Promise<MfaOutcome | null> {
  const wait = Math.max(await mfaWaitMs(operatorId), await addressWaitMs(clientIp(request)));
  return wait > 0 ? { ok: false, code: 'mfa.throttled', values: { seconds: Math.ceil(wait / 1000) } } : null;
}

export async function factorsOf(operatorId: string): Promise<FactorSummary> {
  const { db } = await services();
  return (await factorSummaries(db, [operatorId])).get(operatorId) ?? { totp: false, passkeys: 0, recoveryCodesLeft: 0 };
}

// ------------------------------------------------------------------ sign-in: the second step

/** What the second-factor page offers this session. */
export async function challengeOptions(pending: LiveSession): Promise<FactorSummary> {
  return factorsOf(pending.operator.id);
}

/** A code from the authenticator app: the session becomes signed in. A code already used is refused (replay). */
export async function verifyTotpSignIn(request: Request, pending: LiveSession, rawCode: string): Promise<MfaOutcome> {
  const { db } = await services();
  const op = pending.operator;
  const wait = await throttled(request, op.id);
  if (wait) {
    await auditMfa(request, op, 'denied', { method: 'totp', reason: 'throttled' }, AUDIT_ACTIONS.authMfa);
    return wait;
  }
  const totp = await totpFor(db, op.id);
  const code = rawCode.replace(/\s/g, '');
  if (!totp?.confirmedAt) {
    await auditMfa(request, op, 'denied', { method: 'totp', reason: 'no totp' });
    return { ok: false, code: 'mfa.totp_wrong' };
  }
  const step = await totpStep(await openSecret(totp.secret), code);
  if (step === null) {
    await auditMfa(request, op, 'denied', { method: 'totp', reason: 'wrong code' });
    return { ok: false, code: 'mfa.totp_wrong' };
  }
  // The conditional update accepts each time step once: a code seen before (or an older one) is a replay.
  if (!(await acceptTotpStep(db, op.id, step))) {
    await auditMfa(request, op, 'denied', { method: 'totp', reason: 'replay' });
    return { ok: false, code: 'mfa.totp_used' };
  }
  await auditMfa(request, op, 'ok', { method: 'totp' });
  return { ok: true, headers: await completeSignIn(request, pending, 'password+totp') };
}

/** A recovery code: works once, then never again. */
export async function verifyRecoverySignIn(request: Request, pending: LiveSession, rawCode: string): Promise<MfaOutcome> {
  const { db } = await services();
  const op = pending.operator;
  const wait = await throttled(request, op.id);
  if (wait) {
    await auditMfa(request, op, 'denied', { method: 'recovery', reason: 'throttled' });
    return wait;
  }
  if (!rawCode.trim() || !(await spendRecoveryCode(db, op.id, recoveryHash(op.id, rawCode)))) {
    await auditMfa(request, op, 'denied', { method: 'recovery', reason: 'wrong or used code' });
    return { ok: false, code: 'mfa.recovery_wrong' };
  }
  const left = await unusedRecoveryCodeCount(db, op.id);
  await auditMfa(request, op, 'ok', { method: 'recovery', left });
  return { ok: true, headers: await completeSignIn(request, pending, 'password+recovery') };
}

/** The browser's passkey challenge for this session (the allowed credentials are this operator's). */
export async function passkeySignInOptions(pending: LiveSession) {
  const { db } = await services();
  const { rpID } = await relyingParty();
  const keys = await passkeysFor(db, pending.operator.id);
  const options = await generateAuthenticationOptions({
    rpID,
    allowCredentials: keys.map((k) => ({ id: k.id, transports: k.transports ? (JSON.parse(k.transports) as string[]) : undefined })),
    userVerification: 'preferred',
  });
  await setSessionChallenge(db, pending.session.idHash, options.challenge);
  return options;
}

/** The authenticator's answer to the challenge: signature, origin, RP id and counter checked. */
export async function verifyPasskeySignIn(request: Request, pending: LiveSession, responseJson: string): Promise<MfaOutcome> {
  const { db } = await services();
  const op = pending.operator;
  const wait = await throttled(request, op.id);
  if (wait) {
    await auditMfa(request, op, 'denied', { method: 'passkey', reason: 'throttled' });
    return wait;
  }
  const refuse = async (reason: string) => {
    await auditMfa(request, op, 'denied', { method: 'passkey', reason });
    return { ok: false as const, code: 'mfa.passkey_failed' };
  };
  const challenge = await takeSessionChallenge(db, pending.session.idHash);
  if (!challenge) return refuse('no challenge');
  let response: AuthenticationResponseJSON;
  try {
    response = JSON.parse(responseJson) as AuthenticationResponseJSON;
  } catch {
    return refuse('malformed');
  }
  const key = typeof response?.id === 'string' ? await findPasskey(db, response.id) : undefined;
  if (!key || key.operatorId !== op.id) return refuse('unknown credential');
  const { rpID, origin } = await relyingParty();
  let verified;
  try {
    verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: origin,
      expectedRPID: rpID,
      credential: {
        id: key.id,
        publicKey: Buffer.from(key.publicKey, 'base64url'),
        counter: key.counter,
        transports: key.transports ? JSON.parse(key.transports) : undefined,
      },
      requireUserVerification: false,
    });
  } catch (err) {
    return refuse(`invalid: ${(err as Error).message.slice(0, 200)}`);
  }
  if (!verified.verified) return refuse('not verified');
  const next = verified.authenticationInfo.newCounter;
  // Authenticators that keep a counter must move it forward; one that went back is a cloned key.
  if (key.counter > 0 && next <= key.counter) return refuse('counter went back');
  if (!(await recordPasskeyUse(db, key.id, key.counter, next))) return refuse('raced');
  await auditMfa(request, op, 'ok', { method: 'passkey', passkey: key.name });
  return { ok: true, headers: await completeSignIn(request, pending, 'password+passkey') };
}

// ------------------------------------------------------------------ setting a factor up

export interface TotpEnrolment {
  /** Base32, for typing into the app by hand. */
  secret: string;
  /** The otpauth:// URI the QR code holds. */
  uri: string;
  /** The QR code as an SVG data URL. */
  qr: string;
}

/**
 * The TOTP secret being set up for this operator: the pending one if the page is reloaded
 * (so a half-scanned code keeps working), else a new one. Null when the app is already set up.
 */
export async function totpEnrolment(operator: { id: string; email: string }, restart = false): Promise<TotpEnrolment | null> {
  const { db } = await services();
  const existing = await totpFor(db, operator.id);
  if (existing?.confirmedAt) return null;
  let secret = existing && !restart ? await openSecret(existing.secret) : null;
  if (!secret) {
    secret = generateSecret();
    await putPendingTotp(db, operator.id, await sealSecret(secret));
  }
  const uri = generateURI({ issuer: ISSUER, label: operator.email, secret });
  const svg = await QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
  return { secret, uri, qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
}

/**
 * A first factor set up during sign-in (stage `enrol`) finishes the sign-in; the first factor
 * ever also brings ten recovery codes, shown once.
 */
async function afterEnrolment(request: Request, live: LiveSession, method: string): Promise<MfaOutcome> {
  const { db } = await services();
  const recoveryCodes =
    (await unusedRecoveryCodeCount(db, live.operator.id)) === 0 ? await issueRecoveryCodes(live.operator.id) : undefined;
  const headers = live.session.stage === 'full' ? undefined : await completeSignIn(request, live, method);
  return { ok: true, ...(headers ? { headers } : {}), ...(recoveryCodes ? { recoveryCodes } : {}) };
}

/** The first code from the app confirms the secret (and counts as used: it cannot sign in again). */
export async function confirmTotp(request: Request, live: LiveSession, rawCode: string): Promise<MfaOutcome> {
  const { db } = await services();
  const op = live.operator;
  const wait = await throttled(request, op.id);
  if (wait) return wait;
  const totp = await totpFor(db, op.id);
  if (!totp || totp.confirmedAt) return { ok: false, code: 'mfa.enrol_expired' };
  const code = rawCode.replace(/\s/g, '');
  const step = await totpStep(await openSecret(totp.secret), code);
  if (step === null || !(await acceptTotpStep(db, op.id, step))) {
    await auditMfa(request, op, 'denied', { method: 'totp', reason: 'wrong code', enrolment: true });
    return { ok: false, code: 'mfa.totp_wrong' };
  }
  await auditMfa(request, op, 'ok', { factor: 'totp' }, AUDIT_ACTIONS.authMfaEnrol);
  return afterEnrolment(request, live, 'password+totp');
}

/** The browser's passkey registration challenge (existing keys excluded, so one key is not added twice). */
export async function passkeyRegistrationOptions(live: LiveSession) {
  const { db } = await services();
  const { rpID } = await relyingParty();
  const keys = await passkeysFor(db, live.operator.id);
  const options = await generateRegistrationOptions({
    rpName: ISSUER,
    rpID,
    userName: live.operator.email,
    userDisplayName: live.operator.name,
    userID: new TextEncoder().encode(live.operator.id),
    attestationType: 'none',
    excludeCredentials: keys.map((k) => ({ id: k.id, transports: k.transports ? (JSON.parse(k.transports) as string[]) : undefined })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
  await setSessionChallenge(db, live.session.idHash, options.challenge);
  return options;
}

export async function registerPasskey(request: Request, live: LiveSession, responseJson: string, name: string): Promise<MfaOutcome> {
  const { db } = await services();
  const op = live.operator;
  const refuse = async (reason: string) => {
    await auditMfa(request, op, 'denied', { factor: 'passkey', reason }, AUDIT_ACTIONS.authMfaEnrol);
    return { ok: false as const, code: 'mfa.passkey_register_failed' };
  };
  const challenge = await takeSessionChallenge(db, live.session.idHash);
  if (!challenge) return refuse('no challenge');
  let response: RegistrationResponseJSON;
  try {
    response = JSON.parse(responseJson) as RegistrationResponseJSON;
  } catch {
    return refuse('malformed');
  }
  const { rpID, origin } = await relyingParty();
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: origin,
      expectedRPID: rpID,
      requireUserVerification: false,
    });
  } catch (err) {
    return refuse(`invalid: ${(err as Error).message.slice(0, 200)}`);
  }
  if (!verified.verified) return refuse('not verified');
  const info = verified.registrationInfo;
  if (await findPasskey(db, info.credential.id)) return refuse('already registered');
  const label = name.trim().slice(0, 60);
  await insertPasskey(db, {
    id: info.credential.id,
    operatorId: op.id,
    publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
    counter: info.credential.counter,
    transports: info.credential.transports ? JSON.stringify(info.credential.transports) : null,
    deviceType: info.credentialDeviceType,
    backedUp: info.credentialBackedUp ? 1 : 0,
    name: label,
  });
  await auditMfa(request, op, 'ok', { factor: 'passkey', name: label }, AUDIT_ACTIONS.authMfaEnrol);
  return afterEnrolment(request, live, 'password+passkey');
}

// ------------------------------------------------------------------ /account

export interface SecurityData {
  factors: FactorSummary;
  /** A TOTP enrolment was started and not finished. */
  totpPending: boolean;
  /** This operator's role must keep a second factor (MFA_REQUIRED). */
  required: boolean;
  passkeys: Array<{ id: string; name: string; createdAt: string; lastUsedAt: string | null }>;
  sessions: Array<{
    key: string;
    current: boolean;
    createdAt: string;
    lastSeenAt: string;
    device: string | null;
    ip: string | null;
    method: string | null;
  }>;
}

export async function securityData(who: SignedIn, currentHash: string | null): Promise<SecurityData> {
  const { db, env } = await services();
  const totp = await totpFor(db, who.operator.id);
  const sessions = await listLiveSessions(db, who.operator.id, await sessionPolicy());
  return {
    factors: await factorsOf(who.operator.id),
    totpPending: Boolean(totp && !totp.confirmedAt),
    required: env.mfaRequired.includes(who.operator.role),
    passkeys: (await passkeysFor(db, who.operator.id)).map(({ id, name, createdAt, lastUsedAt }) => ({ id, name, createdAt, lastUsedAt })),
    // The list needs a key per row, not the session's id hash (it stays on the server).
    sessions: sessions.map((s) => ({
      key: s.idHash.slice(0, 12),
      current: s.idHash === currentHash,
      createdAt: s.createdAt,
      lastSeenAt: s.lastSeenAt,
      device: deviceOf(s.userAgent),
      ip: s.ip,
      method: s.method,
    })),
  };
}

/** Whether removing one factor would leave a person whose role requires one with none. */
async function lastRequiredFactor(who: SignedIn, removing: 'totp' | 'passkey'): Promise<boolean> {
  const { env } = await services();
  if (!env.mfaRequired.includes(who.operator.role)) return false;
  const f = await factorsOf(who.operator.id);
  const left = (f.totp && removing !== 'totp' ? 1 : 0) + f.passkeys - (removing === 'passkey' ? 1 : 0);
  return left <= 0;
}

export async function newRecoveryCodes(request: Request, who: SignedIn): Promise<MfaOutcome> {
  const f = await factorsOf(who.operator.id);
  if (!f.totp && f.passkeys === 0) return { ok: false, code: 'account:security.recovery_needs_factor' };
  const recoveryCodes = await issueRecoveryCodes(who.operator.id);
  await auditMfa(request, who.operator, 'ok', { count: recoveryCodes.length }, AUDIT_ACTIONS.authRecoveryCodes);
  return { ok: true, recoveryCodes };
}

export async function removeTotp(request: Request, who: SignedIn): Promise<MfaOutcome> {
  const { db } = await services();
  if (await lastRequiredFactor(who, 'totp')) return { ok: false, code: 'account:security.last_factor' };
  await deleteTotp(db, who.operator.id);
  await dropRecoveryCodesIfNoFactor(who.operator.id);
  await auditMfa(request, who.operator, 'ok', { factor: 'totp' }, AUDIT_ACTIONS.authMfaRemove);
  return { ok: true };
}

export async function removePasskey(request: Request, who: SignedIn, id: string): Promise<MfaOutcome> {
  const { db } = await services();
  if (await lastRequiredFactor(who, 'passkey')) return { ok: false, code: 'account:security.last_factor' };
  if (!(await deletePasskey(db, who.operator.id, id))) return { ok: false, code: 'account:security.no_such_passkey' };
  await dropRecoveryCodesIfNoFactor(who.operator.id);
  await auditMfa(request, who.operator, 'ok', { factor: 'passkey' }, AUDIT_ACTIONS.authMfaRemove);
  return { ok: true };
}

/** Recovery codes stand in for a factor; with none left they would be a second password. */
async function dropRecoveryCodesIfNoFactor(operatorId: string): Promise<void> {
  const { db } = await services();
  const f = await factorsOf(operatorId);
  if (!f.totp && f.passkeys === 0) await replaceRecoveryCodes(db, operatorId, []);
}

/** Ends every session of the operator, this one included. */
export async function signOutEverywhere(request: Request, who: SignedIn): Promise<number> {
  const { db } = await services();
  const ended = await revokeOperatorSessions(db, who.operator.id);
  await auditMfa(request, who.operator, 'ok', { sessionsEnded: ended }, AUDIT_ACTIONS.authSignOutEverywhere);
  return ended;
}

// ------------------------------------------------------------------ admins

export type AdminOutcome = {
  tone: 'ok' | 'error';
  code: string;
  values?: Record<string, string | number>;
  errors?: Record<string, string>;
};

/**
 * An admin removes every second factor of a person (a lost phone) and ends their sessions: at
 * their next password sign-in they set one up again if their role requires it.
 */
export async function resetFactors(request: Request, who: SignedIn, targetId: string): Promise<AdminOutcome> {
  const { db } = await services();
  const target = await findOperatorById(db, targetId);
  if (!target) return { tone: 'error', code: 'operators:identity.no_such_operator' };
  const before = await factorsOf(target.id);
  await deleteAllFactors(db, target.id);
  const ended = await revokeOperatorSessions(db, target.id);
  await appendAudit(db, {
    operatorId: who.operator.id,
    actor: who.operator.email,
    action: AUDIT_ACTIONS.operatorFactorsReset,
    targetType: 'operator',
    targetId: target.id,
    outcome: 'ok',
    detail: { totp: before.totp, passkeys: before.passkeys, recoveryCodesLeft: before.recoveryCodesLeft, sessionsEnded: ended },
    ip: clientIp(request),
  });
  return { tone: 'ok', code: 'operators:identity.reset_done', values: { email: target.email } };
}

/** An admin ends every session of a person (a stolen laptop) without disabling them. */
export async function signOutOperator(request: Request, who: SignedIn, targetId: string): Promise<AdminOutcome> {
  const { db } = await services();
  const target = await findOperatorById(db, targetId);
  if (!target) return { tone: 'error', code: 'operators:identity.no_such_operator' };
  const ended = await revokeOperatorSessions(db, target.id);
  await appendAudit(db, {
    operatorId: who.operator.id,
    actor: who.operator.email,
    action: AUDIT_ACTIONS.operatorSignOut,
    targetType: 'operator',
    targetId: target.id,
    outcome: 'ok',
    detail: { sessionsEnded: ended },
    ip: clientIp(request),
  });
  return { tone: 'ok', code: 'operators:identity.signed_out', values: { email: target.email, count: ended } };
}

export interface IdentityOverview {
  factors: Record<string, FactorSummary>;
  /** Signed-in sessions per operator. */
  sessions: Record<string, number>;
  /** Operators linked to the identity provider. */
  sso: string[];
  /** Roles that must use a second factor with a password. */
  mfaRequired: string[];
}

/** The operators page: each person's factors, signed-in sessions and single sign-on link. */
export async function identityOverview(): Promise<IdentityOverview> {
  const { db, env } = await services();
  const [f, s, linked] = await Promise.all([
    factorSummaries(db),
    liveSessionCounts(db, await sessionPolicy()),
    operatorsLinkedToProvider(db),
  ]);
  return { factors: Object.fromEntries(f), sessions: Object.fromEntries(s), sso: [...linked], mfaRequired: env.mfaRequired };
}

/** The operators page's identity forms (`reset-factors`, `sign-out`), or null for its other intents. */
export async function identityAction(request: Request, who: SignedIn, form: FormData): Promise<AdminOutcome | null> {
  const intent = form.get('intent');
  const id = String(form.get('id') ?? '');
  if (intent === 'reset-factors') return resetFactors(request, who, id);
  if (intent === 'sign-out') return signOutOperator(request, who, id);
  return null;
}

/** A short description of the browser a session runs in ("Chrome 131 · Linux"); names, not words. */
export function deviceOf(userAgent: string | null): string | null {
  if (!userAgent) return null;
  const browser =
    /Edg\/(\d+)/.exec(userAgent)?.[1] !== undefined
      ? `Edge ${/Edg\/(\d+)/.exec(userAgent)![1]}`
      : /Firefox\/(\d+)/.test(userAgent)
        ? `Firefox ${/Firefox\/(\d+)/.exec(userAgent)![1]}`
        : /Chrom(e|ium)\/(\d+)/.test(userAgent)
          ? `Chrome ${/Chrom(?:e|ium)\/(\d+)/.exec(userAgent)![1]}`
          : /Version\/(\d+).*Safari/.test(userAgent)
            ? `Safari ${/Version\/(\d+)/.exec(userAgent)![1]}`
            : null;
  const os = /Windows/.test(userAgent)
    ? 'Windows'
    : /iPhone|iPad/.test(userAgent)
      ? 'iOS'
      : /Mac OS X/.test(userAgent)
        ? 'macOS'
        : /Android/.test(userAgent)
          ? 'Android'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : null;
  return [browser, os].filter(Boolean).join(' · ') || userAgent.slice(0, 60);
}

export type SecurityOutcome = { security: true; tone: 'ok' | 'error'; code: string; recoveryCodes?: string[]; signedOut?: boolean };

/** The /account page's security forms (intents starting with `security-`). */
export async function securityAction(request: Request, who: SignedIn, intent: string, form: FormData): Promise<SecurityOutcome> {
  const done = (r: MfaOutcome, okCode: string): SecurityOutcome =>
    r.ok
      ? { security: true, tone: 'ok', code: okCode, ...(r.recoveryCodes ? { recoveryCodes: r.recoveryCodes } : {}) }
      : { security: true, tone: 'error', code: r.code };
  switch (intent) {
    case 'security-remove-totp':
      return done(await removeTotp(request, who), 'account:security.totp_removed');
    case 'security-remove-passkey':
      return done(await removePasskey(request, who, String(form.get('id') ?? '')), 'account:security.passkey_removed');
    case 'security-recovery-codes':
      return done(await newRecoveryCodes(request, who), 'account:security.recovery_generated');
    case 'security-sign-out-everywhere':
      await signOutEverywhere(request, who);
      return { security: true, tone: 'ok', code: 'account:security.signed_out_everywhere', signedOut: true };
    default:
      return { security: true, tone: 'error', code: 'account:unknown_intent' };
  }
}
