import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { dossierZipResponse } from '~/dossier.server';

/** GET /users/:id/dossier.zip — the customer's complete file (compliance+, unmasked, audited). */
export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  return dossierZipResponse(request, who, params.id ?? '');
}
