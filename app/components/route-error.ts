import { isRouteErrorResponse } from '@remix-run/react';
import type { TFunction } from 'i18next';

/** A thrown Response whose body is a catalogue key (`review:errors.no_customer`): facades word nothing themselves. */
export const CATALOGUE_KEY = /^[a-z][a-z0-9-]*:[A-Za-z0-9_.-]+$/;

/**
 * What an error boundary tells the operator: the route's own message (worded with `t` when it is
 * a catalogue key), else a route-specific fallback.
 */
export function routeErrorMessage(error: unknown, fallback: string, t?: TFunction): string {
  if (!isRouteErrorResponse(error)) return fallback;
  const text = typeof error.data === 'string' ? error.data : error.statusText;
  return t && CATALOGUE_KEY.test(text) ? t(text) : text;
}
