/**
 * Object grants in the admin console (auth.grants.manage): the list with filters in the URL (user by email,
 * role, permission, object type and id), creating a grant (a permission on one object, to a user named by
 * email or to a role), and deleting one after a confirmation. The same rbac service calls as
 * /api/auth/grants/: granting or revoking needs holding the permission (no escalation).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { MAX_PAGE_SIZE, pageLinks } from '../../lib/pagination.js';
import { objectSchema, type GrantListing, type RbacService } from '../../services/rbac/service.js';
import { dateView } from '../../views/date.js';
import { seeOther } from '../../views/page.js';
import type { AdminContext } from './context.js';

const PAGE_SIZE = 50;

const config = { page: true, adminPermission: 'auth.grants.manage' } as const;
const idParams = z.object({ id: z.string().max(100) });
const text = (max: number) => z.string().trim().max(max).optional().catch(undefined);
const listQuery = z.object({
  user: text(320),
  role: text(100),
  permission: text(100),
  object_type: text(100),
  object_id: text(200),
  cursor: z.string().max(200).optional().catch(undefined),
  done: z.enum(['created', 'deleted']).optional().catch(undefined),
});
const DONE = { created: 'The grant was created.', deleted: 'The grant was deleted.' } as const;
const grantForm = z.object({
  csrf: z.string().max(100),
  subject: z.enum(['user', 'role']),
  user: z.string().trim().max(320).default(''),
  role: z.string().trim().max(100).default(''),
  permission: z.string().trim().min(1).max(100),
  object_type: objectSchema.shape.type,
  object_id: objectSchema.shape.id,
});
const notSaved = ['The form was not complete: a user or a role, a permission, an object type (letters, digits, . _ : -) and an object id are needed.'];

export async function adminGrantRoutes(app: FastifyInstance, deps: { context: AdminContext; rbac: RbacService }): Promise<void> {
  const { context, rbac } = deps;

  /** Grants as the pages show them: the user's email rather than an id. */
  async function grantRows(grants: GrantListing[]) {
    const emails = await rbac.userEmails(grants.flatMap((g) => (g.userId ? [g.userId] : [])));
    return grants.map((g) => ({
      id: g.id,
      subject: g.userId ? { kind: 'User', name: emails.get(g.userId) ?? g.userId } : { kind: 'Role', name: g.roleName ?? '' },
      permission: g.codename,
      object: `${g.objectType}:${g.objectId}`,
      created: dateView(g.createdAt),
    }));
  }

  app.get('/admin/grants', { config }, async (request, reply) => {
    const query = listQuery.parse(request.query);
    const filters = { user: query.user, role: query.role, permission: query.permission, object_type: query.object_type, object_id: query.object_id };
    const userId = query.user ? await rbac.findUserIdByEmail(query.user) : undefined;
    const page =
      query.user && !userId
        ? { items: [], next_cursor: null }
        : await rbac.listGrants({ limit: PAGE_SIZE, cursor: query.cursor, userId, role: query.role || undefined, permission: query.permission || undefined, objectType: query.object_type || undefined, objectId: query.object_id || undefined });
    return context.send(request, reply, 200, 'grants', {
      title: 'Object grants',
      current: '/admin/grants',
      notice: query.done ? DONE[query.done] : undefined,
      filters: Object.fromEntries(Object.entries(filters).map(([k, v]) => [k, v ?? ''])),
      grants: await grantRows(page.items),
      links: pageLinks('/admin/grants', filters, page, query.cursor),
    });
  });

  app.get('/admin/grants/new', { config }, async (request, reply) => {
    const [roles, permissions] = await Promise.all([rbac.listRoles({ limit: MAX_PAGE_SIZE }), rbac.listPermissions({ limit: MAX_PAGE_SIZE })]);
    return context.send(request, reply, 200, 'grants-form', {
      title: 'New object grant',
      current: '/admin/grants',
      roles: roles.items.map((r) => r.name),
      permissions: permissions.items.map((p) => p.codename),
    });
  });

  app.post('/admin/grants', { config }, async (request, reply) => {
    const form = grantForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not saved', notSaved);
    const { subject, user, role, permission, object_type: type, object_id: id } = form.data;
    let userId: string | undefined;
    if (subject === 'user') {
      userId = await rbac.findUserIdByEmail(user);
      if (!userId) throw new AppError('invalid_request', 'user: no user has this email');
    } else if (!role) throw new AppError('invalid_request', 'role: choose a role');
    await rbac.createGrant({ userId, role: subject === 'role' ? role : undefined, permission, object: { type, id } }, context.actorOf(request));
    return seeOther(reply, '/admin/grants?done=created');
  });

  app.get('/admin/grants/:id/delete', { config }, async (request, reply) => {
    const grant = await rbac.getGrant(idParams.parse(request.params).id);
    if (!grant) throw new AppError('not_found', 'grant not found', 404);
    const [row] = await grantRows([grant]);
    return context.send(request, reply, 200, 'grants-delete', { title: 'Delete object grant?', current: '/admin/grants', grant: row });
  });

  app.post('/admin/grants/:id/delete', { config }, async (request, reply) => {
    await rbac.deleteGrant(idParams.parse(request.params).id, context.actorOf(request));
    return seeOther(reply, '/admin/grants?done=deleted');
  });
}
