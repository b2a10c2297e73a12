import { useSearchParams } from '@remix-run/react';
import { useTranslation } from 'react-i18next';

/**
 * Toasts. After a redirect the message travels as a short code in the URL (`?flash=created`),
 * never as free text, so a crafted link cannot put words on our page; the code names a
 * `common:flash.<code>` entry and its tone. After an action that re-renders, the route passes
 * its own (translated) message.
 */
export const FLASH_TONES: Record<string, 'ok' | 'error' | 'info'> = {
  created: 'ok',
  'created-queued': 'info',
  'created-failed': 'error',
  'signed-out': 'info',
  welcome: 'ok',
  'preferences-saved': 'ok',
};

export function Toast({ tone, text }: { tone: 'ok' | 'error' | 'info'; text: string }) {
  return (
    <div className={`toast ${tone === 'info' ? '' : tone}`} role={tone === 'error' ? 'alert' : 'status'} aria-live="polite">
      {text}
    </div>
  );
}

export function FlashToast() {
  const { t } = useTranslation('common');
  const [params] = useSearchParams();
  const code = params.get('flash') ?? '';
  const tone = Object.hasOwn(FLASH_TONES, code) ? FLASH_TONES[code] : undefined;
  return tone ? <Toast tone={tone} text={t(`flash.${code}`)} /> : null;
}
