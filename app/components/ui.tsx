import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useFormat } from './format';

/** A state's name in the operator's language; the Capa code stays on hover and in the class. */
export function StateBadge({ state }: { state: string }) {
  const { t, i18n } = useTranslation('common');
  const key = `states.${state}`;
  return (
    <span className={`badge ${state}`} title={state}>
      {i18n.exists(key, { ns: 'common' }) ? t(key) : state.replace(/_/g, ' ')}
    </span>
  );
}

/**
 * "hace 3 min" / "3 min. ago", with the exact local time on hover. The server and the first
 * client render show the same local date and time (the relative text depends on the clock of
 * whoever renders, so it only replaces it after hydration).
 */
export function TimeAgo({ iso }: { iso: string | null | undefined }) {
  const fmt = useFormat();
  const [now, setNow] = useState<number | null>(null);
  useEffect(() => {
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);
  if (!iso) return <span className="muted">—</span>;
  const text = now === null ? fmt.dateTime(iso) : fmt.relative(iso, now);
  return (
    <time dateTime={iso} title={`${fmt.dateTime(iso, { seconds: true })} · ${fmt.timeZone}`}>
      {text}
    </time>
  );
}

/** Copies text; without JavaScript the text stays selectable next to it. */
export function CopyButton({ text, label }: { text: string; label?: string }) {
  const { t } = useTranslation('common');
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="secondary small"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => {
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        });
      }}
    >
      {done ? t('buttons.copied') : (label ?? t('buttons.copy'))}
    </button>
  );
}
