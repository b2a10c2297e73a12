import { ROLES, type Role } from './roles.js';

/**
 * Which console role a person gets from what their identity provider says about them. The claim
 * named by OIDC_ROLE_CLAIM may be a list (groups, roles) or one string, and may sit inside an
 * object (Keycloak's `realm_access.roles`); each value is looked up in OIDC_ROLE_MAP and the most
 * privileged match wins. No match means no access: an unmapped person is refused, never given a
 * default role.
 */
export interface RoleMapEntry {
  value: string;
  role: Role;
}

/** The values of `claim` (a dotted path) in the claims, as strings; absent or unusable gives []. */
export function claimValues(claims: Record<string, unknown>, claim: string): string[] {
  let v: unknown = claims;
  // A claim whose own name contains dots (a namespaced claim such as https://example.com/roles)
  // is taken whole before the name is read as a path.
  if (claim in claims) v = claims[claim];
  else {
    for (const part of claim.split('.')) {
      if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
      v = (v as Record<string, unknown>)[part];
    }
  }
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

/** Most privileged first, so the first match while walking ROLES is the one to keep. */
const PRIVILEGE: readonly Role[] = ROLES;

export function roleFromClaims(claims: Record<string, unknown>, claim: string, map: readonly RoleMapEntry[]): Role | null {
  const values = new Set(claimValues(claims, claim));
  const granted = new Set(map.filter((m) => values.has(m.value)).map((m) => m.role));
  return PRIVILEGE.find((r) => granted.has(r)) ?? null;
}
