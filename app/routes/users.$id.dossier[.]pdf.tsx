import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { dossierPdfResponse } from '~/dossier.server';

/** GET /users/:id/dossier.pdf — the customer's complete file (compliance+, unmasked, audited). */
export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  return dossierPdfResponse(request, who, params.id ?? '');
}
