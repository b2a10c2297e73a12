import { useCallback } from 'react';
import { useTranslation } from 'react-i18next';
import { useFormat } from './format';

/** "about 3 min" / "aprox. 3 min": what an operator needs from an estimate (refresh preview and run pages). */
export function useEta(): (seconds: number) => string {
  const { t } = useTranslation('refresh');
  const fmt = useFormat();
  return useCallback((seconds) => (seconds <= 0 ? t('eta_none') : t('eta', { duration: fmt.duration(seconds * 1000) })), [t, fmt]);
}
