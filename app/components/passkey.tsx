import { startAuthentication, startRegistration, WebAuthnError } from '@simplewebauthn/browser';
import { useSubmit } from '@remix-run/react';
import { useState } from 'react';

/**
 * The browser half of a passkey ceremony: fetch options (a challenge kept on our session) from
 * /auth/passkey, let the authenticator answer, and post the answer to the page's own action
 * (`intent=passkey`), which verifies it. `failed` is set when the browser or the person said no;
 * the server's verdict comes back as the page's action data.
 */
export function usePasskey(csrf: string) {
  const submit = useSubmit();
  const [busy, setBusy] = useState(false);
  const [failed, setFailed] = useState<string | null>(null);

  async function ceremony(kind: 'sign-in' | 'register', fields: Record<string, string>) {
    setBusy(true);
    setFailed(null);
    try {
      const res = await fetch('/auth/passkey', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ intent: kind, csrf }),
      });
      if (!res.ok) throw new Error(`options ${res.status}`);
      const optionsJSON = await res.json();
      const response = kind === 'sign-in' ? await startAuthentication({ optionsJSON }) : await startRegistration({ optionsJSON });
      submit({ ...fields, csrf, response: JSON.stringify(response) }, { method: 'post' });
    } catch (err) {
      // The person cancelled, the authenticator refused, or this browser has no passkey support.
      setFailed(err instanceof WebAuthnError ? err.code : 'error');
    } finally {
      setBusy(false);
    }
  }

  return {
    busy,
    failed,
    signIn: (fields: Record<string, string>) => ceremony('sign-in', fields),
    register: (fields: Record<string, string>) => ceremony('register', fields),
  };
}
