import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { auditCsvResponse } from '~/audit.server';

/** GET /audit.csv?… — the filtered audit log as a streamed CSV download (same filters as /audit). */
export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  return auditCsvResponse(request, who, new URL(request.url).searchParams);
}
