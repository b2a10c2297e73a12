import type { ActionFunctionArgs } from '@remix-run/node';
import { handleCapaWebhook } from '~/webhooks.server';

// Capa calls this; it carries its own authentication (the HMAC signature), not an operator session.
export async function action({ request }: ActionFunctionArgs) {
  return handleCapaWebhook(request);
}

export async function loader() {
  return new Response('Method Not Allowed', { status: 405, headers: { Allow: 'POST' } });
}
