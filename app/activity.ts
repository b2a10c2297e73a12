/**
 * Idle sessions and pages that poll. A page that refreshes itself (import progress, a refresh
 * run, a customer waiting for a webhook) sends requests with nobody at the keyboard; counted as
 * activity they would keep a session open forever on an unattended screen. So the browser marks
 * its own requests as background when the person has not touched the page for a while, and the
 * server answers them without counting them (app/auth.server.ts). A request without the mark
 * counts, as before: the mark can only make a session end sooner.
 */

export const BACKGROUND_HEADER = 'x-kyc-background';

/** No input for this long: requests the page makes now are the page's, not the person's. */
export const QUIET_MS = 60_000;

const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'scroll', 'touchstart'] as const;

/** Wraps the page's fetch (Remix's data requests and fetchers use it) once, before hydration. */
export function installActivityMarker(win: Window & typeof globalThis): void {
  let lastInput = Date.now();
  const touch = () => {
    lastInput = Date.now();
  };
  for (const e of INPUT_EVENTS) win.addEventListener(e, touch, { capture: true, passive: true });
  const original = win.fetch.bind(win);
  win.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    if (Date.now() - lastInput < QUIET_MS) return original(input, init);
    const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (new URL(href, win.location.href).origin !== win.location.origin) return original(input, init);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set(BACKGROUND_HEADER, '1');
    return original(input, { ...init, headers });
  };
}
