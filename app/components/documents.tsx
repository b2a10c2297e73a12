import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { DocumentKind } from '~/documents';

/**
 * KYC documents and selfie inline: thumbnails through our own proxy (/users/:id/documents/:kind),
 * a click shows one enlarged. Viewers see that a document exists, never the picture.
 */
export function DocumentThumbs({ userId, kinds, canSee }: { userId: string; kinds: DocumentKind[]; canSee: boolean }) {
  const { t } = useTranslation('evidence');
  const [open, setOpen] = useState<DocumentKind | null>(null);
  if (kinds.length === 0) return null;
  const src = (k: DocumentKind) => `/users/${encodeURIComponent(userId)}/documents/${k}`;
  return (
    <div className="documents" data-testid="documents">
      <h3>{t('documents.heading')}</h3>
      <ul className="thumbs">
        {kinds.map((k) => (
          <li key={k}>
            {!canSee ? (
              <span className="thumb withheld">{t('documents.withheld')}</span>
            ) : k === 'selfie_video' ? (
              <video src={src(k)} controls preload="none" width={160} aria-label={t(`documents.kinds.${k}`)} />
            ) : (
              <button type="button" className="thumb" onClick={() => setOpen(k)} title={t('documents.enlarge')}>
                <img src={src(k)} alt={t(`documents.kinds.${k}`)} width={160} loading="lazy" />
              </button>
            )}
            <small>{t(`documents.kinds.${k}`)}</small>
          </li>
        ))}
      </ul>
      {open && canSee ? (
        <div className="lightbox" role="dialog" aria-label={t(`documents.kinds.${open}`)}>
          <img src={src(open)} alt={t(`documents.kinds.${open}`)} />
          <button type="button" onClick={() => setOpen(null)}>
            {t('documents.close')}
          </button>
        </div>
      ) : null}
    </div>
  );
}
