import type { ActionFunctionArgs, LoaderFunctionArgs } from '@remix-run/node';
import { redirect } from '@remix-run/node';
import { requireMutation, requireOperator, signOut } from '~/auth.server';
import { signOutDestination } from '~/sso.server';

/** GET /logout never signs out (a link or image could do it); it just goes home. */
export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'viewer');
  throw redirect('/');
}

/**
 * Ends our session; a session opened through single sign-on goes on to the provider's own
 * sign-out (when it offers one), which sends the browser back to /login.
 */
export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'viewer');
  const provider = await signOutDestination(request);
  const headers = await signOut(request, who);
  throw redirect(provider ?? '/login?flash=signed-out', { headers });
}
