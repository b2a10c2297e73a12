import { useRouteLoaderData } from '@remix-run/react';

export interface RootData {
  operator: { id: string; email: string; name: string; role: 'viewer' | 'compliance' | 'admin' } | null;
  csrfToken: string | null;
  /** The language the page is in (es | en) and the operator's time zone (root loader). */
  locale: string;
  timeZone: string;
}

export function useRootData(): RootData {
  return (useRouteLoaderData('root') as RootData | undefined) ?? { operator: null, csrfToken: null, locale: 'en', timeZone: 'UTC' };
}

/** The session's CSRF token as the hidden `csrf` field every state-changing form must carry. */
export function CsrfInput() {
  const { csrfToken } = useRootData();
  return <input type="hidden" name="csrf" value={csrfToken ?? ''} />;
}
