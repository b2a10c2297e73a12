import http from 'node:http';
import * as jose from 'jose';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

/**
 * A real OpenID provider for the tests: panva's oidc-provider, in this process, on a free port,
 * with the development login page (any password) and people in different groups. Consent is
 * given on the person's behalf (a first-party console asks nobody to "allow" it).
 *
 * `tamper` rewrites the ID token the token endpoint hands out — re-signed with the provider's
 * own key, or with another one — so the client's checks (signature, issuer, audience, nonce,
 * expiry) meet a real token that is wrong in exactly one way.
 */

export interface IdpUser {
  sub: string;
  email: string;
  email_verified: boolean;
  name: string;
  groups: string[];
}

export const IDP_USERS: Record<string, IdpUser> = {
  analyst: { sub: 'analyst', email: 'ana.analyst@corp.test', email_verified: true, name: 'Ana Analyst', groups: ['staff', 'kyc-analysts'] },
  outsider: {
    sub: 'outsider',
    email: 'oscar.outsider@corp.test',
    email_verified: true,
    name: 'Oscar Outsider',
    groups: ['staff', 'marketing'],
  },
  boss: { sub: 'boss', email: 'bea.boss@corp.test', email_verified: true, name: 'Bea Boss', groups: ['kyc-admins'] },
  unverified: { sub: 'unverified', email: 'uma@corp.test', email_verified: false, name: 'Uma Unverified', groups: ['kyc-analysts'] },
};

export const ROLE_MAP = 'kyc-admins:admin,kyc-analysts:compliance,kyc-readers:viewer';

export type Tamper = (
  claims: jose.JWTPayload,
  sign: (claims: jose.JWTPayload, opts?: { otherKey?: boolean }) => Promise<string>,
) => Promise<string>;

export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** People by login name; tests may change their groups (the provider reads them on every request). */
  users: Record<string, IdpUser>;
  /** Rewrites the next ID tokens issued by the token endpoint (null: leave them alone). */
  tamper: Tamper | null;
  close(): Promise<void>;
}

/** The console's env for this provider. */
export function oidcEnv(idp: TestIdp, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    OIDC_DISPLAY_NAME: 'Corp ID',
    OIDC_SCOPES: 'openid email profile groups',
    OIDC_ROLE_MAP: ROLE_MAP,
    OIDC_RECHECK_SECONDS: '0',
    ...extra,
  };
}

export async function startTestIdp(opts: { redirectUris: string[]; postLogoutRedirectUris?: string[] }): Promise<TestIdp> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const other = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
  const users: Record<string, IdpUser> = structuredClone(IDP_USERS);

  const idp: TestIdp = {
    issuer,
    clientId: 'kyc-desk',
    clientSecret: 'kyc-desk-test-secret-0123456789',
    users,
    tamper: null,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const configuration: Configuration = {
    clients: [
      {
        client_id: idp.clientId,
        client_secret: idp.clientSecret,
        redirect_uris: opts.redirectUris,
        post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk as jose.JWK & { kid: string }] } as Configuration['jwks'],
    cookies: { keys: ['test-idp-cookie-key-0123456789'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    features: { devInteractions: { enabled: true } },
    // Lifetimes stated (the provider prints a notice for each one left to its default).
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, RefreshToken: 3600, Session: 3600 },
    async findAccount(_ctx, id) {
      const u = users[id];
      if (!u) return undefined;
      return { accountId: id, claims: async () => ({ ...users[id]! }) };
    },
    // First-party client: consent is implied (the default asks the person each time).
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId });
      grant.addOIDCScope('openid email profile groups offline_access');
      await grant.save();
      return grant;
    },
    // A refresh token for every sign-in of this client, so the console can re-check the person.
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    rotateRefreshToken: () => true,
  };

  const provider = new Provider(issuer, configuration);
  const sign = async (claims: jose.JWTPayload, o: { otherKey?: boolean } = {}) =>
    new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key-1' }).sign(o.otherKey ? other.privateKey : privateKey);
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    const body = ctx.body as { id_token?: string } | undefined;
    if (idp.tamper && ctx.oidc?.route === 'token' && body?.id_token) {
      ctx.body = { ...body, id_token: await idp.tamper(jose.decodeJwt(body.id_token), sign) };
    }
  });
  server.on('request', provider.callback());
  return idp;
}

/**
 * Signs a person in at the provider the way a browser would, without one: follows the
 * authorization request through the login interaction and returns the URL the provider sends
 * the browser back to (our callback, with code, state and iss).
 */
export async function signInAtIdp(authorizationUrl: string, login: string): Promise<string> {
  const jar = new Map<string, string>();
  const remember = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      jar.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  let url = authorizationUrl;
  let method = 'GET';
  let body: URLSearchParams | undefined;
  const origin = new URL(authorizationUrl).origin;
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(url, { method, body, redirect: 'manual', headers: { cookie: cookie() } });
    remember(res);
    const location = res.headers.get('location');
    if (location) {
      const next = new URL(location, url).href;
      if (!next.startsWith(origin)) return next;
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`provider answered ${res.status} at ${url}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    if (!action || !prompt) throw new Error(`unexpected provider page at ${url}`);
    url = new URL(action.replace(/&amp;/g, '&'), url).href;
    method = 'POST';
    body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt });
  }
  throw new Error('too many redirects at the provider');
}
