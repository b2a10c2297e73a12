import type { LoaderFunctionArgs } from '@remix-run/node';
import { redirect } from '@remix-run/node';
import { startSso } from '~/sso.server';

/** Public: GET /auth/oidc?next=… sends the browser to the identity provider to sign in. */
export async function loader({ request }: LoaderFunctionArgs) {
  const r = await startSso(request);
  if (!r.ok) throw redirect(`/login?sso=${r.reason}`);
  throw redirect(r.location, { headers: r.headers });
}
