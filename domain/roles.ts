/** Operator roles, least to most privileged last: admin ⊃ compliance ⊃ viewer. */
export const ROLES = ['admin', 'compliance', 'viewer'] as const;
export type Role = (typeof ROLES)[number];
