import { PassThrough } from 'node:stream';
import type { AppLoadContext, EntryContext } from '@remix-run/node';
import { createReadableStreamFromReadable } from '@remix-run/node';
import { RemixServer } from '@remix-run/react';
import { isbot } from 'isbot';
import { renderToPipeableStream } from 'react-dom/server';
import { I18nextProvider } from 'react-i18next';
import type { RootData } from './components/csrf';
import { languageOf } from './i18n';
import { i18nFor, i18nInstance } from './i18n.server';
import { NonceContext } from './nonce';

/**
 * The web host's pieces of the app (services, the webhook fast path, bull-board's guard): the
 * build's entry module is how server/web.ts reaches them, so it never loads app/ source beside
 * the build.
 */
export { host } from './host.server';

const ABORT_DELAY = 5_000;

/**
 * Console pages and their data carry personal data: never cached by the browser or a proxy
 * (helmet sets CSP, frame-ancestors and nosniff for every response in server/security-headers.ts).
 */
function noStore(headers: Headers): void {
  headers.set('Cache-Control', 'private, no-store');
  headers.set('Pragma', 'no-cache');
}

export function handleDataRequest(response: Response): Response {
  noStore(response.headers);
  return response;
}

/**
 * The language the root loader chose (the operator's, the browser's or the instance's); when the
 * root loader did not answer (it failed, or an action threw and Remix ran no loader), the same
 * choice made here.
 */
async function pageLanguage(request: Request, remixContext: EntryContext) {
  const root = remixContext.staticHandlerContext.loaderData?.root as Partial<RootData> | undefined;
  return languageOf(root?.locale) ?? (await i18nFor(request)).locale;
}

export default async function handleRequest(
  request: Request,
  responseStatusCode: number,
  responseHeaders: Headers,
  remixContext: EntryContext,
  loadContext: AppLoadContext,
) {
  const ua = request.headers.get('user-agent');
  const readyEvent = ua && isbot(ua) ? 'onAllReady' : 'onShellReady';
  const nonce = (loadContext as { cspNonce?: string } | undefined)?.cspNonce;
  noStore(responseHeaders);
  const i18n = i18nInstance(await pageLanguage(request, remixContext));
  return new Promise((resolve, reject) => {
    let shellRendered = false;
    const { pipe, abort } = renderToPipeableStream(
      <I18nextProvider i18n={i18n}>
        <NonceContext.Provider value={nonce}>
          <RemixServer context={remixContext} url={request.url} abortDelay={ABORT_DELAY} nonce={nonce} />
        </NonceContext.Provider>
      </I18nextProvider>,
      {
        nonce,
        [readyEvent]() {
          shellRendered = true;
          const body = new PassThrough();
          const stream = createReadableStreamFromReadable(body);
          responseHeaders.set('Content-Type', 'text/html; charset=utf-8');
          resolve(new Response(stream, { headers: responseHeaders, status: responseStatusCode }));
          pipe(body);
        },
        onShellError(error: unknown) {
          reject(error);
        },
        onError(error: unknown) {
          responseStatusCode = 500;
          if (shellRendered) console.error(error);
        },
      },
    );
    setTimeout(abort, ABORT_DELAY);
  });
}
