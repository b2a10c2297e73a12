import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { importProgressData } from '~/imports.server';

/** GET /imports/:id/progress — polled by the import page for the live progress bar. */
export async function loader({ request, params }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return Response.json(await importProgressData(params.id ?? ''), { headers: { 'cache-control': 'no-store' } });
}
