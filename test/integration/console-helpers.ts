import { randomBytes } from 'node:crypto';
import type { Db } from '../../db/client.js';
import { createOperator } from '../../app/operator-accounts.server.js';
import type { Role } from '../../db/schema.js';
import { action as loginAction } from '../../app/routes/login';
import { loader as rootLoader } from '../../app/root';

/** Helpers for console integration tests: real Requests against real route modules. */
export const ORIGIN = 'http://127.0.0.1:3999'; // = PUBLIC_URL of the test runtime

export const PASSWORD = 'correct horse battery';

export async function makeOperator(db: Db, role: Role, email = `${role}-${randomBytes(3).toString('hex')}@desk.test`) {
  const op = await createOperator(db, { email, name: `${role} operator`, role, password: PASSWORD });
  return { id: op.id, email: op.email, role };
}

export interface Browser {
  cookie: string;
  csrf: string;
  role: Role | null;
}

export interface Called {
  status: number;
  location: string | null;
  headers: Headers;
  data: any;
  thrown: boolean;
}

/** Runs a loader/action and normalises what Remix would see: a value, data(), a Response, or a thrown Response. */
export async function call(fn: (args: any) => any, request: Request, params: Record<string, string> = {}): Promise<Called> {
  let out: unknown;
  let thrown = false;
  try {
    out = await fn({ request, params, context: {} });
  } catch (err) {
    if (!(err instanceof Response)) throw err;
    out = err;
    thrown = true;
  }
  if (out instanceof Response) {
    const text = await out.text();
    let data: unknown = text;
    try {
      data = JSON.parse(text);
    } catch {
      /* plain text */
    }
    return { status: out.status, location: out.headers.get('location'), headers: out.headers, data, thrown };
  }
  if (out && typeof out === 'object' && (out as { type?: string }).type === 'DataWithResponseInit') {
    const d = out as { data: unknown; init: ResponseInit | null };
    return { status: d.init?.status ?? 200, location: null, headers: new Headers(d.init?.headers), data: d.data, thrown };
  }
  return { status: 200, location: null, headers: new Headers(), data: out, thrown };
}

export function get(path: string, b?: Browser | null, headers: Record<string, string> = {}): Request {
  return new Request(`${ORIGIN}${path}`, { headers: { ...(b?.cookie ? { cookie: b.cookie } : {}), ...headers } });
}

/** A form POST as our own page sends it: same Origin and (unless told otherwise) the session's token. */
export function post(
  path: string,
  b: Browser | null,
  fields: Record<string, string | string[]>,
  opts: { origin?: string | null; csrf?: string | null; headers?: Record<string, string> } = {},
): Request {
  const body = new URLSearchParams();
  const csrf = opts.csrf === undefined ? b?.csrf : opts.csrf;
  if (csrf) body.set('csrf', csrf);
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
  const origin = opts.origin === undefined ? ORIGIN : opts.origin;
  return new Request(`${ORIGIN}${path}`, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(origin ? { origin } : {}),
      ...(b?.cookie ? { cookie: b.cookie } : {}),
      ...opts.headers,
    },
  });
}

export function cookieFrom(res: Called): string {
  const set = res.headers.get('set-cookie');
  if (!set) throw new Error(`no Set-Cookie (status ${res.status}: ${JSON.stringify(res.data)})`);
  return set.split(';')[0]!;
}

export async function signIn(email: string, password = PASSWORD, role: Role | null = null): Promise<Browser> {
  const res = await call(loginAction, post('/login', null, { email, password, next: '/' }));
  if (res.status !== 302) throw new Error(`sign-in failed: ${res.status} ${JSON.stringify(res.data)}`);
  const cookie = cookieFrom(res);
  const root = await call(rootLoader, get('/', { cookie, csrf: '', role }));
  return { cookie, csrf: root.data.csrfToken, role };
}

export async function signInAs(db: Db, role: Role): Promise<Browser & { operatorId: string; email: string }> {
  const op = await makeOperator(db, role);
  const b = await signIn(op.email, PASSWORD, role);
  return { ...b, operatorId: op.id, email: op.email };
}
