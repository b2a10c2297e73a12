/**
 * Reading a KYC media file (ID front/back, selfie, selfie video) named in Get KYC Details. The
 * console shows these through its own proxy, so Capa's URLs and our key never reach a browser.
 * The partner key is sent only to Capa's own origin: media on another host (signed file URLs)
 * must not receive it. Only image and video types come back — an SVG or HTML answer could run
 * script in the console's origin.
 */

export const MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'video/mp4', 'video/webm'] as const;

export type MediaFetch =
  | { ok: true; contentType: (typeof MEDIA_TYPES)[number]; body: ReadableStream<Uint8Array>; length: number | null }
  | { ok: false; code: 'not_found' | 'bad_type' | 'too_large' | 'unavailable'; status?: number };

export async function fetchKycMedia(
  url: string,
  opts: { capaBaseUrl: string; apiKey: string; timeoutMs: number; maxBytes: number },
): Promise<MediaFetch> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, code: 'not_found' };
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') return { ok: false, code: 'not_found' };
  const sameOrigin = target.origin === new URL(opts.capaBaseUrl).origin;
  let res: Response;
  try {
    res = await fetch(target, {
      headers: sameOrigin ? { 'partner-api-key': opts.apiKey } : {},
      redirect: sameOrigin ? 'manual' : 'follow',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch {
    return { ok: false, code: 'unavailable' };
  }
  if (res.status === 404 || res.status === 410) return { ok: false, code: 'not_found', status: res.status };
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return { ok: false, code: 'unavailable', status: res.status };
  }
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!(MEDIA_TYPES as readonly string[]).includes(type)) {
    await res.body.cancel();
    return { ok: false, code: 'bad_type' };
  }
  const length = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(length) && length > opts.maxBytes) {
    await res.body.cancel();
    return { ok: false, code: 'too_large' };
  }
  // A file without a length is cut off at maxBytes rather than read whole.
  let seen = 0;
  const capped = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > opts.maxBytes) controller.error(new Error('media larger than allowed'));
        else controller.enqueue(chunk);
      },
    }),
  );
  return { ok: true, contentType: type as (typeof MEDIA_TYPES)[number], body: capped, length: Number.isFinite(length) ? length : null };
}
