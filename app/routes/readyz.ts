import { readiness } from '~/health.server';

export async function loader() {
  const r = await readiness();
  return Response.json(r, { status: r.ok ? 200 : 503, headers: { 'Cache-Control': 'no-store' } });
}
