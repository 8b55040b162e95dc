/** The permissions keryu-auth's own APIs require and the admin role holding auth.superuser; ensured at every start-up. */
import type { Db } from '../../db/client.js';
import { createRbacQueries } from '../../queries/rbac.js';
import { SUPERUSER } from './effective.js';

export const BUILTIN_PERMISSIONS = {
  'auth.superuser': 'Everything in keryu-auth, and granting anything',
  'auth.roles.manage': 'Manage roles and role assignments',
  'auth.permissions.manage': 'Manage permissions',
  'auth.users.manage': 'Manage users',
  'auth.grants.manage': 'Manage object-level grants',
  'auth.tokens.manage': 'Manage tokens and sessions',
  'auth.audit.read': 'Read the audit log',
  'auth.check': 'Ask authorization decisions about other subjects',
  'auth.clients.manage': 'Manage OAuth clients: register, change, rotate secrets, delete, and their service-account roles',
} as const;
export type AuthPermission = keyof typeof BUILTIN_PERMISSIONS;
export const ADMIN_ROLE = 'admin';

export interface BuiltinOptions {
  /**
   * Whether the admin role, when this call creates it (a new installation), requires a second factor
   * (default true: an account that can do everything must not fall to a password alone, NIST SP 800-63B
   * AAL2). An existing admin role keeps its setting; the bootstrap file (`roles: [{name: admin,
   * mfa_required: false}]`) or the roles API change it.
   */
  adminMfaRequired?: boolean;
}

/** Idempotent: the auth.* permissions and the admin role holding auth.superuser. Safe on concurrent replicas. */
export async function ensureBuiltins(db: Db, options: BuiltinOptions = {}): Promise<void> {
  await db.transaction(async (tx) => {
    const q = createRbacQueries(tx);
    for (const [codename, description] of Object.entries(BUILTIN_PERMISSIONS)) await q.insertBuiltinPermission(codename, description);
    await q.insertBuiltinRole(ADMIN_ROLE, 'Built-in: holds auth.superuser', { mfaRequired: options.adminMfaRequired ?? true });
    const admin = await q.findRoleByName(ADMIN_ROLE);
    const [su] = await q.findPermissionsByCodenames([SUPERUSER]);
    if (admin && su) await q.addRolePermission(admin.id, su.id);
  });
}
