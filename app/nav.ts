import type { Role } from '../db/schema';

/** Top navigation: each entry shows from `minRole` up (the route itself still checks). */
export const NAV: Array<{ to: string; label: string; minRole: Role }> = [
  { to: '/', label: 'Home', minRole: 'viewer' },
  { to: '/users', label: 'Users', minRole: 'viewer' },
  { to: '/review', label: 'Review', minRole: 'viewer' },
  { to: '/imports', label: 'Imports', minRole: 'compliance' },
  { to: '/notifications', label: 'Notifications', minRole: 'compliance' },
  { to: '/webhooks', label: 'Webhooks', minRole: 'viewer' },
  { to: '/drift', label: 'Drift', minRole: 'viewer' },
  { to: '/refresh', label: 'Refresh', minRole: 'compliance' },
  { to: '/capa/deliveries', label: 'Capa log', minRole: 'compliance' },
  { to: '/audit', label: 'Audit', minRole: 'compliance' },
  { to: '/queues', label: 'Queues', minRole: 'admin' },
  { to: '/admin/operators', label: 'Operators', minRole: 'admin' },
  { to: '/admin/settings', label: 'Settings', minRole: 'admin' },
];

const RANK: Record<Role, number> = { viewer: 0, compliance: 1, admin: 2 };
export const navFor = (role: Role) => NAV.filter((n) => RANK[role] >= RANK[n.minRole]);
