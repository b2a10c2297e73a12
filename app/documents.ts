import type { KycDetails } from '../capa/types.js';

/**
 * KYC media by the name the console's URLs use (`/users/:id/documents/:kind`), and which of them
 * a KYC result names. Only the kinds ever reach the page — the URLs stay on the server.
 */
export const DOCUMENT_KINDS = {
  id_front: 'frontIdImageUrl',
  id_back: 'backIdImageUrl',
  selfie: 'selfieImageUrl',
  selfie_video: 'selfieVideoUrl',
} as const;
export type DocumentKind = keyof typeof DOCUMENT_KINDS;
export const isDocumentKind = (k: string): k is DocumentKind => Object.hasOwn(DOCUMENT_KINDS, k);

export function documentKinds(details: KycDetails | null | undefined): DocumentKind[] {
  const media = details?.media ?? {};
  return (Object.keys(DOCUMENT_KINDS) as DocumentKind[]).filter(
    (k) => typeof media[DOCUMENT_KINDS[k]] === 'string' && media[DOCUMENT_KINDS[k]] !== '',
  );
}
