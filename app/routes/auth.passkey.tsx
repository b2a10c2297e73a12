import type { ActionFunctionArgs } from '@remix-run/node';
import { requireSessionMutation } from '~/auth.server';
import { passkeyRegistrationOptions, passkeySignInOptions } from '~/mfa.server';

/**
 * POST /auth/passkey — the WebAuthn options (with a fresh challenge kept on the session) the
 * browser hands to the authenticator: `intent=sign-in` for a session waiting for its second
 * factor, `intent=register` to add a passkey (while setting one up, or from /account).
 */
export async function action({ request }: ActionFunctionArgs) {
  const { live, form } = await requireSessionMutation(request, ['mfa', 'enrol', 'full']);
  const intent = form.get('intent');
  const noStore = { 'cache-control': 'no-store' };
  if (intent === 'sign-in' && live.session.stage === 'mfa') return Response.json(await passkeySignInOptions(live), { headers: noStore });
  if (intent === 'register' && live.session.stage !== 'mfa')
    return Response.json(await passkeyRegistrationOptions(live), { headers: noStore });
  return Response.json({ error: 'intent must be sign-in (while the second factor is pending) or register' }, { status: 400 });
}
