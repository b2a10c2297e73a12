import { useEffect, useState } from 'react';

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge ${state}`}>{state.replace(/_/g, ' ')}</span>;
}

/** "3 min ago", with the exact UTC time on hover. Server and first client render agree (UTC text). */
export function TimeAgo({ iso }: { iso: string | null | undefined }) {
  const [now, setNow] = useState<number | null>(null);
  useEffect(() => {
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);
  if (!iso) return <span className="muted">—</span>;
  const t = Date.parse(iso);
  const text = now === null ? iso.replace('T', ' ').slice(0, 16) + ' UTC' : ago(now - t);
  return (
    <time dateTime={iso} title={iso}>
      {text}
    </time>
  );
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 36) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}

/** Copies text; without JavaScript the text stays selectable next to it. */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
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
      {done ? 'Copied' : label}
    </button>
  );
}
