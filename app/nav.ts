import type { Role } from '../db/schema';

/**
 * Top navigation: each entry shows from `minRole` up (the route itself still checks). `label` is
 * a key in the `common` catalogue.
 */
export const NAV: Array<{ to: string; label: string; minRole: Role }> = [
  { to: '/', label: 'nav.home', minRole: 'viewer' },
  { to: '/users', label: 'nav.users', minRole: 'viewer' },
  { to: '/review', label: 'nav.review', minRole: 'viewer' },
  { to: '/imports', label: 'nav.imports', minRole: 'compliance' },
  { to: '/notifications', label: 'nav.notifications', minRole: 'compliance' },
  { to: '/webhooks', label: 'nav.webhooks', minRole: 'viewer' },
  { to: '/drift', label: 'nav.drift', minRole: 'viewer' },
  { to: '/refresh', label: 'nav.refresh', minRole: 'compliance' },
  { to: '/capa/deliveries', label: 'nav.capa_log', minRole: 'compliance' },
  { to: '/audit', label: 'nav.audit', minRole: 'compliance' },
  { to: '/queues', label: 'nav.queues', minRole: 'admin' },
  { to: '/admin/operators', label: 'nav.operators', minRole: 'admin' },
  { to: '/admin/settings', label: 'nav.settings', minRole: 'admin' },
];

const RANK: Record<Role, number> = { viewer: 0, compliance: 1, admin: 2 };
export const navFor = (role: Role) => NAV.filter((n) => RANK[role] >= RANK[n.minRole]);
