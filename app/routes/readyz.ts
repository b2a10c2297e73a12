import { readiness } from '~/health.server';

// Public like /healthz (probes carry no session); it names components and counts, never data.
export async function loader() {
  const r = await readiness();
  return Response.json(r, { status: r.ok ? 200 : 503, headers: { 'Cache-Control': 'no-store' } });
}
