import { NavLink, useRouteLoaderData } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import type { AlertBadgeData } from '../alerts.server';

/**
 * The header's alert badge: how many alerts are firing (red when one is critical), linking to
 * /alerts. The root loader reads the counts on every navigation.
 */
export function AlertBadge() {
  const { t } = useTranslation('alerts');
  const root = useRouteLoaderData('root') as { alerts?: AlertBadgeData | null } | undefined;
  const a = root?.alerts;
  const firing = a?.firing ?? 0;
  const tone = firing === 0 ? 'quiet' : a?.critical ? 'critical' : 'warning';
  const title = firing ? t('badge.firing', { count: firing }) : t('badge.quiet');
  return (
    <NavLink to="/alerts" className={`alert-badge ${tone}`} title={title} aria-label={title} data-testid="alert-badge" data-firing={firing}>
      {t('badge.label')}
      {firing ? <span className="count">{firing}</span> : null}
    </NavLink>
  );
}
