import { isRouteErrorResponse } from '@remix-run/react';

/** What an error boundary tells the operator: the route's own message, else a route-specific fallback. */
export function routeErrorMessage(error: unknown, fallback: string): string {
  if (!isRouteErrorResponse(error)) return fallback;
  return typeof error.data === 'string' ? error.data : error.statusText;
}
