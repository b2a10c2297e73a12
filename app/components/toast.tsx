import { useSearchParams } from '@remix-run/react';

/**
 * Toasts. After a redirect the message travels as a short code in the URL (`?flash=created`),
 * never as free text, so a crafted link cannot put words on our page; after an action that
 * re-renders, the route passes its own message.
 */
export const FLASH: Record<string, { tone: 'ok' | 'error' | 'info'; text: string }> = {
  created: { tone: 'ok', text: 'Customer created and sent to Capa.' },
  'created-queued': {
    tone: 'info',
    text: 'Customer saved. Capa is slow right now: the request is queued and this page will show the outcome.',
  },
  'created-failed': { tone: 'error', text: 'Customer saved here, but Capa refused it — see the reason below.' },
  'signed-out': { tone: 'info', text: 'You are signed out.' },
  welcome: { tone: 'ok', text: 'Welcome! Your admin account is ready.' },
};

export function Toast({ tone, text }: { tone: 'ok' | 'error' | 'info'; text: string }) {
  return (
    <div className={`toast ${tone === 'info' ? '' : tone}`} role={tone === 'error' ? 'alert' : 'status'} aria-live="polite">
      {text}
    </div>
  );
}

export function FlashToast() {
  const [params] = useSearchParams();
  const f = FLASH[params.get('flash') ?? ''];
  return f ? <Toast tone={f.tone} text={f.text} /> : null;
}
