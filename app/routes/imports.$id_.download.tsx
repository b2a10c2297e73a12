import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { exportCsv } from '~/imports.server';

/** GET /imports/:id/download?kind=results|errors — the rows as CSV (PII: compliance and up, audited). */
export async function loader({ request, params }: LoaderFunctionArgs) {
  const who = await requireOperator(request, 'compliance');
  const kind = new URL(request.url).searchParams.get('kind') === 'errors' ? 'errors' : 'results';
  return exportCsv(request, who, params.id ?? '', kind);
}
