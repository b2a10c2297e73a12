import type { LoaderFunctionArgs } from '@remix-run/node';
import { requireOperator } from '~/auth.server';
import { templateResponse } from '~/imports.server';

export async function loader({ request }: LoaderFunctionArgs) {
  await requireOperator(request, 'compliance');
  return templateResponse();
}
