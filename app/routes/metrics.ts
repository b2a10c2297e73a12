import type { LoaderFunctionArgs } from '@remix-run/node';
import { metricsAccess, renderMetrics } from '~/metrics.server';

// Machine caller (Prometheus): guarded by METRICS_TOKEN or loopback, not by an operator session.
export async function loader({ request, context }: LoaderFunctionArgs) {
  const access = await metricsAccess(request, (context as { clientAddress?: string }).clientAddress);
  if (!access.ok) {
    return new Response(access.message, {
      status: access.status,
      headers: {
        'Content-Type': 'text/plain; charset=utf-8',
        'Cache-Control': 'no-store',
        ...(access.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="metrics"' } : {}),
      },
    });
  }
  const { body, contentType } = await renderMetrics();
  return new Response(body, { headers: { 'Content-Type': contentType, 'Cache-Control': 'no-store' } });
}
