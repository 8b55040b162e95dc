/**
 * The admin console under /admin/: server-rendered pages that work without JavaScript, signed in like the
 * account pages, each page and action guarded by the permission it declares (routes/admin/context.ts). The
 * pages call the same services as the management API, with the same Actor, so the same no-escalation rules
 * apply. A page is one route module registered below and one line in navigation.ts.
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import type { AccountSessions } from '../../services/account/session.js';
import type { AuditService } from '../../services/audit.js';
import type { DecisionCache } from '../../services/rbac/cache.js';
import type { FormCsrf } from '../../views/csrf.js';
import { createAccountContext } from '../account/context.js';
import { createAdminContext } from './context.js';
import { adminHomeRoutes } from './home.js';
import { adminRoleRoutes } from './roles.js';
import { adminPermissionRoutes } from './permissions.js';
import { adminAssignmentRoutes } from './assignments.js';
import { adminGrantRoutes } from './grants.js';
import type { RbacService } from '../../services/rbac/service.js';
import { adminUserActions } from './users-actions.js';
import { adminUserPages, type UserPageDeps } from './users.js';
import { adminAuditRoutes, type AuditPageDeps } from './audit.js';
import { adminClientRoutes, type ClientPageDeps } from './clients.js';

export interface AdminRouteDeps {
  /** The account pages' sessions: the console is signed in with the same session, cookies and CSRF tokens. */
  sessions: AccountSessions;
  csrf: FormCsrf;
  secureCookies: boolean;
  cache: DecisionCache;
  audit: AuditService;
  /** Roles, permissions, bulk assignments and object grants pages. */
  rbac: RbacService;
  users: Omit<UserPageDeps, 'context'>;
  auditLog: AuditPageDeps['auditLog'];
  clients: Omit<ClientPageDeps, 'context'>;
}

export async function adminRoutes(app: FastifyInstance, deps: AdminRouteDeps): Promise<void> {
  // Forms are small; a bulk assignment's list of emails is the largest one.
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  const account = createAccountContext({ sessions: deps.sessions, csrf: deps.csrf, secureCookies: deps.secureCookies });
  const context = createAdminContext({ account, cache: deps.cache, audit: deps.audit });
  context.protect(app);
  context.handleErrors(app);
  await adminHomeRoutes(app, { context });
  await adminRoleRoutes(app, { context, rbac: deps.rbac });
  await adminPermissionRoutes(app, { context, rbac: deps.rbac });
  await adminAssignmentRoutes(app, { context, rbac: deps.rbac });
  await adminGrantRoutes(app, { context, rbac: deps.rbac });
  await adminUserPages(app, { context, ...deps.users });
  await adminUserActions(app, { context, ...deps.users });
  await adminAuditRoutes(app, { context, auditLog: deps.auditLog });
  await adminClientRoutes(app, { context, ...deps.clients });
}
