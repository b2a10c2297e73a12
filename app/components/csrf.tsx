import { useRouteLoaderData } from '@remix-run/react';

export interface RootData {
  operator: { id: string; email: string; name: string; role: 'viewer' | 'compliance' | 'admin' } | null;
  csrfToken: string | null;
}

export function useRootData(): RootData {
  return (useRouteLoaderData('root') as RootData | undefined) ?? { operator: null, csrfToken: null };
}

/** The session's CSRF token as the hidden `csrf` field every state-changing form must carry. */
export function CsrfInput() {
  const { csrfToken } = useRootData();
  return <input type="hidden" name="csrf" value={csrfToken ?? ''} />;
}
