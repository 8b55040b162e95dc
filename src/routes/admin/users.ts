/**
 * The Users pages: search by email or name with cursor paging, and a user's page (profile, lock state,
 * factors, sessions, roles, effective permissions with their sources, recent activity). Reading them needs
 * auth.users.manage; the actions are in users-actions.ts.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { pageLinks } from '../../lib/pagination.js';
import type { ActivityService } from '../../services/activity.js';
import type { FactorService } from '../../services/mfa/factors.js';
import { permissionSources } from '../../services/rbac/provenance.js';
import type { RbacService } from '../../services/rbac/service.js';
import type { SessionService } from '../../services/sessions.js';
import type { UserAdminService } from '../../services/user-admin.js';
import { dateView } from '../../views/date.js';
import type { AdminContext } from './context.js';
import { activityView, assignmentView, factorView, profileView, signInView, sourceView, USER_NOTICES, userListItem, type UserNotice } from './users-view.js';

export interface UserPageDeps {
  context: AdminContext;
  userAdmin: UserAdminService;
  rbac: Pick<RbacService, 'listUserRoles' | 'userPermissions' | 'listRoles' | 'assignRole' | 'unassignRole'>;
  factors: Pick<FactorService, 'list'>;
  signIns: Pick<SessionService, 'listTokens'>;
  activity: Pick<ActivityService, 'listUserActivity'>;
}

const USERS_PAGE_SIZE = 25;
/** The most recent entries a user's page shows of their sign-ins and activity (the full lists are in the audit log and the API). */
const RECENT = 20;
/** Roles offered in the assignment form; more than this is a sign to use the roles page or the API. */
const ROLE_CHOICES = 200;

const listQuery = z.object({
  q: z.string().trim().max(254).optional().catch(undefined),
  cursor: z.string().max(200).optional(),
});
const idParams = z.object({ id: z.string() });
const doneQuery = z.object({ done: z.enum(Object.keys(USER_NOTICES) as [UserNotice, ...UserNotice[]]).optional().catch(undefined) });

export async function adminUserPages(app: FastifyInstance, deps: UserPageDeps): Promise<void> {
  const { context } = deps;
  const config = { page: true, adminPermission: 'auth.users.manage' } as const;

  app.get('/admin/users', { config }, async (request, reply) => {
    const query = listQuery.safeParse(request.query);
    if (!query.success) return context.message(request, reply, 400, 'Request not understood', ['The search was not valid.']);
    const { q, cursor } = query.data;
    const page = await deps.userAdmin.listUsers({ limit: USERS_PAGE_SIZE, cursor, search: q || undefined });
    const links = pageLinks('/admin/users', { q }, page, cursor);
    return context.send(request, reply, 200, 'users', { title: 'Users', current: '/admin/users', q: q ?? '', users: page.items.map(userListItem), first: links.first, next: links.next });
  });

  app.get('/admin/users/:id', { config }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    // 404 for an unknown or malformed id, before anything else is read.
    const user = await deps.userAdmin.getUser(id);
    // Roles and effective permissions are read, as in the API, with auth.roles.manage.
    const canManageRoles = context.can(request, 'auth.roles.manage');
    const [lock, factors, signIns, roles, effective, activity, choices] = await Promise.all([
      deps.userAdmin.lockState(user.id),
      deps.factors.list(user.id),
      deps.signIns.listTokens(user.id, undefined, { limit: RECENT, active: true }),
      canManageRoles ? deps.rbac.listUserRoles(user.id) : [],
      canManageRoles ? deps.rbac.userPermissions(user.id) : undefined,
      deps.activity.listUserActivity(user.id, { limit: RECENT }),
      canManageRoles ? deps.rbac.listRoles({ limit: ROLE_CHOICES }) : undefined,
    ]);
    const notice = doneQuery.parse(request.query).done;
    return context.send(request, reply, 200, 'user', {
      title: user.email,
      current: '/admin/users',
      notice: notice ? USER_NOTICES[notice] : undefined,
      profile: profileView(user),
      lock: { failures: lock.failures, lockedUntil: dateView(lock.lockedUntil) },
      factors: factors.map(factorView),
      signIns: signIns.items.map(signInView),
      moreSignIns: signIns.next_cursor !== null,
      roles: roles.map(assignmentView),
      canManageRoles,
      roleChoices: choices?.items.map((r) => r.name) ?? [],
      superuser: effective?.superuser ?? false,
      permissions: effective ? permissionSources(effective).map(sourceView) : [],
      activity: activity.items.map(activityView),
    });
  });
}
