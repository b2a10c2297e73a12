import type { ActionFunctionArgs, LoaderFunctionArgs } from '@remix-run/node';
import { redirect } from '@remix-run/node';
import { requireMutation, requireOperator, signOut } from '~/auth.server';

/** GET /logout never signs out (a link or image could do it); it just goes home. */
export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'viewer');
  throw redirect('/');
}

export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'viewer');
  const headers = await signOut(request, who);
  throw redirect('/login?flash=signed-out', { headers });
}
