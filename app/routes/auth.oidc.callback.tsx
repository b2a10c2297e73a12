import type { LoaderFunctionArgs } from '@remix-run/node';
import { redirect } from '@remix-run/node';
import { finishSso } from '~/sso.server';

/**
 * Public: the identity provider sends the browser back here (register PUBLIC_URL + this path at
 * the provider). A refusal goes to the sign-in page, which words its reason.
 */
export async function loader({ request }: LoaderFunctionArgs) {
  const r = await finishSso(request);
  if (!r.ok) throw redirect(`/login?sso=${r.reason}`, { headers: r.headers });
  throw redirect(r.next, { headers: r.headers });
}
