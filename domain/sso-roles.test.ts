import { describe, expect, it } from 'vitest';
import { claimValues, roleFromClaims } from './sso-roles.js';

const MAP = [
  { value: 'kyc-admins', role: 'admin' as const },
  { value: 'kyc-analysts', role: 'compliance' as const },
  { value: 'kyc-readers', role: 'viewer' as const },
];

describe('role from provider claims', () => {
  it('maps a group to its role', () => {
    expect(roleFromClaims({ groups: ['staff', 'kyc-analysts'] }, 'groups', MAP)).toBe('compliance');
  });

  it('gives the most privileged role when several groups match', () => {
    expect(roleFromClaims({ groups: ['kyc-readers', 'kyc-admins', 'kyc-analysts'] }, 'groups', MAP)).toBe('admin');
  });

  it('refuses (null) a person in no mapped group, with no claim, or with a claim of the wrong shape', () => {
    expect(roleFromClaims({ groups: ['staff'] }, 'groups', MAP)).toBeNull();
    expect(roleFromClaims({}, 'groups', MAP)).toBeNull();
    expect(roleFromClaims({ groups: { 'kyc-admins': true } }, 'groups', MAP)).toBeNull();
    expect(roleFromClaims({ groups: [42, null] }, 'groups', MAP)).toBeNull();
  });

  it('reads a single string claim and a nested path (Keycloak realm roles)', () => {
    expect(roleFromClaims({ role: 'kyc-admins' }, 'role', MAP)).toBe('admin');
    expect(roleFromClaims({ realm_access: { roles: ['kyc-readers'] } }, 'realm_access.roles', MAP)).toBe('viewer');
  });

  it('takes a namespaced claim whose name contains dots as one claim', () => {
    expect(claimValues({ 'https://desk.example/roles': ['kyc-admins'] }, 'https://desk.example/roles')).toEqual(['kyc-admins']);
  });

  it('matches values exactly (no prefix or case folding)', () => {
    expect(roleFromClaims({ groups: ['KYC-ADMINS', 'kyc-admins-old'] }, 'groups', MAP)).toBeNull();
  });
});
