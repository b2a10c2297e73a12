import type { MetaFunction } from '@remix-run/node';
import { useTranslation } from 'react-i18next';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'common:kyc_return.page_title') }];

/**
 * Public, customer-facing: where Capa's hosted KYC page sends the customer back
 * (generate-link's default redirect). Shows no data and takes no input. In the customer's
 * browser language (they have no setting of their own), else DEFAULT_LOCALE.
 */
export default function KycReturn() {
  const { t } = useTranslation('common');
  return (
    <main className="page narrow">
      <h1>{t('kyc_return.heading')}</h1>
      <p>{t('kyc_return.body')}</p>
    </main>
  );
}
