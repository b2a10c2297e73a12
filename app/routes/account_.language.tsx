import type { ActionFunctionArgs, LoaderFunctionArgs } from '@remix-run/node';
import { redirect } from '@remix-run/node';
import { saveLanguage } from '~/account.server';
import { requireMutation, requireOperator, safeNext } from '~/auth.server';
import { i18nFor } from '~/i18n.server';

/**
 * The header's language switch posts here: the operator's language is stored (audited) and they
 * go back to the page they were on, now in that language. Works without JavaScript too.
 */
export async function action({ request }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'viewer');
  const r = await saveLanguage(request, who, who.form.get('locale'));
  if (!r.ok) {
    const { t } = await i18nFor(request);
    throw new Response(t(r.code), { status: 400, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  }
  throw redirect(safeNext(String(who.form.get('returnTo') ?? '/')));
}

/** Nothing to show: the setting lives on /account. */
export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'viewer');
  throw redirect('/account');
}
