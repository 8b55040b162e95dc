/**
 * Where each of a subject's permissions comes from, for people reading it (the admin console's user page):
 * a role assigned directly, a role inherited through a chain of parents (the shortest, as decisions explain
 * it), or an object grant (to the subject itself, or to a role it holds). Pure: works on a resolved Effective.
 */
import { roleChain, type Effective } from './effective.js';

export interface PermissionSource {
  permission: string;
  /** `role`: held through a role (chain[0] is assigned directly); `grant`: on one object only. */
  kind: 'role' | 'grant';
  /** Role names from the directly assigned role to the role that holds it; empty for a grant to the subject itself. */
  chain: string[];
  /** Grants only: the object and the grant's id. */
  object?: { type: string; id: string } | undefined;
  grantId?: string | undefined;
}

/** One source per permission (and one per object grant), sorted by permission. */
export function permissionSources(effective: Effective): PermissionSource[] {
  const sources: PermissionSource[] = [];
  for (const [permission, roleId] of effective.permissions) sources.push({ permission, kind: 'role', chain: roleChain(effective, roleId) });
  for (const [key, grant] of effective.grants) {
    const [permission = '', type = '', id = ''] = key.split('\u0000');
    sources.push({ permission, kind: 'grant', chain: grant.roleId ? roleChain(effective, grant.roleId) : [], object: { type, id }, grantId: grant.id });
  }
  return sources.sort((a, b) => a.permission.localeCompare(b.permission) || a.kind.localeCompare(b.kind));
}
