import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { templateResponse } from '~/imports.server';

/** GET /imports/template.csv — the template in the reader's language (its header reads back in any). */
export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return templateResponse(request);
}
