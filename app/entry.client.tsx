import { RemixBrowser } from '@remix-run/react';
import { startTransition, StrictMode } from 'react';
import { hydrateRoot } from 'react-dom/client';
import { I18nextProvider, initReactI18next } from 'react-i18next';
import { installActivityMarker } from './activity';
import { createConsoleI18n, languageOf } from './i18n';

// The server rendered the page in the language written on <html lang>; start i18next in that
// language, with the bundled catalogues, before hydrating: the first client render produces the
// same words as the server (no flash of the other language, no hydration mismatch).
const i18n = createConsoleI18n(languageOf(document.documentElement.lang) ?? 'en', [initReactI18next]);

// Before the first data request: polling without the person at the page must not keep a session alive.
installActivityMarker(window);

startTransition(() => {
  hydrateRoot(
    document,
    <I18nextProvider i18n={i18n}>
      <StrictMode>
        <RemixBrowser />
      </StrictMode>
    </I18nextProvider>,
  );
});
