import { useCallback } from 'react';
import { useTranslation } from 'react-i18next';
import type { Message } from '../action-result';
import { useFormat } from './format';

const MOMENT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

/**
 * Words for facades' messages in the reader's language. Values named `at` or `…At` holding a
 * moment (ISO text) are shown in the reader's time zone, numbers through the catalogue's own
 * formats. Plain text (data, or words from outside such as an SMTP server's answer) is shown as
 * it is.
 */
export function useSay(): (m: Message | string | null | undefined) => string {
  const { t } = useTranslation();
  const fmt = useFormat();
  return useCallback(
    (m) => {
      if (!m) return '';
      if (typeof m === 'string') return m;
      const values: Record<string, string | number> = {};
      for (const [k, v] of Object.entries(m.values ?? {})) {
        values[k] = (k === 'at' || k.endsWith('At')) && typeof v === 'string' && MOMENT.test(v) ? fmt.dateTime(v) : v;
      }
      return t(m.code, values);
    },
    [t, fmt],
  );
}
