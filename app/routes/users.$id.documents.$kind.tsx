import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { documentResponse } from '~/evidence.server';

/** GET /users/:id/documents/:kind — a KYC document or selfie through our server (viewers: withheld). */
export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'viewer');
  return documentResponse(request, who, params.id ?? '', params.kind ?? '');
}
