import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { listExportResponse } from '~/evidence.server';

/** GET /notifications/export.csv?<the list's query string> — every row the filtered list shows, as CSV. */
export async function loader({ request }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  return listExportResponse(request, who, 'notifications');
}
