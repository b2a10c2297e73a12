import { useLocation } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { useRootData } from './csrf';

/**
 * "Export CSV" for a list page: the same query string, so the file holds what the filters show.
 * A plain link (reloadDocument): the download is a streamed response, not a Remix navigation.
 * Viewers are not offered it — the export is unmasked and refused to them.
 */
export function ExportCsvLink({ path }: { path: string }) {
  const { t } = useTranslation('evidence');
  const { operator } = useRootData();
  const location = useLocation();
  if (!operator || operator.role === 'viewer') return null;
  return (
    <a href={`${path}${location.search}`} className="button secondary" download title={t('export.link_title')}>
      {t('export.link')}
    </a>
  );
}

/** The customer's dossier, as PDF and as raw JSON in a ZIP (compliance and above). */
export function DossierLinks({ userId }: { userId: string }) {
  const { t } = useTranslation('evidence');
  const { operator } = useRootData();
  if (!operator || operator.role === 'viewer') return null;
  const base = `/users/${encodeURIComponent(userId)}`;
  return (
    <p className="actions">
      <a href={`${base}/dossier.pdf`} className="button secondary" download>
        {t('dossier.button')}
      </a>{' '}
      <a href={`${base}/dossier.zip`} className="button secondary" download>
        {t('dossier.button_zip')}
      </a>
      {operator.role === 'admin' ? (
        <>
          {' '}
          <a href={`${base}/erasure`}>{t('erasure.link')}</a>
        </>
      ) : null}
    </p>
  );
}
