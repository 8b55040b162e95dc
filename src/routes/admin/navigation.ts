/**
 * The admin console's navigation: every page, in order, with the permission it needs. A page is listed only
 * to someone holding that permission (the same one its routes declare with `config: { adminPermission }`),
 * so what the navigation offers and what the server allows cannot disagree. One line per page.
 */
import type { AuthPermission } from '../../services/rbac/service.js';

export interface AdminPage {
  /** The page's address; also its id (`current` in a page's model marks it in the navigation). */
  path: string;
  label: string;
  permission: AuthPermission;
}

export const ADMIN_NAVIGATION: readonly AdminPage[] = [
  { path: '/admin/users', label: 'Users', permission: 'auth.users.manage' },
  { path: '/admin/roles', label: 'Roles', permission: 'auth.roles.manage' },
  { path: '/admin/permissions', label: 'Permissions', permission: 'auth.permissions.manage' },
  { path: '/admin/assignments', label: 'Bulk assignment', permission: 'auth.roles.manage' },
  { path: '/admin/grants', label: 'Object grants', permission: 'auth.grants.manage' },
  { path: '/admin/clients', label: 'Clients', permission: 'auth.clients.manage' },
  { path: '/admin/audit', label: 'Audit log', permission: 'auth.audit.read' },
];
