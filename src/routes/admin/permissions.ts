/**
 * Permissions in the admin console (auth.permissions.manage): the list, creating one, editing one, and
 * deleting one after what depends on it is shown (the roles holding it, its object grants, and the dry run's
 * blast radius: who would lose it). The same rbac service calls as /api/auth/permissions/.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { pageLinks } from '../../lib/pagination.js';
import { blastRadius, codenameSchema, nameSchema, type PermissionRow, type RbacService } from '../../services/rbac/service.js';
import { seeOther } from '../../views/page.js';
import type { AdminContext } from './context.js';

const PAGE_SIZE = 50;

const config = { page: true, adminPermission: 'auth.permissions.manage' } as const;
const idParams = z.object({ id: z.string().max(100) });
const listQuery = z.object({ codename: z.string().max(100).optional().catch(undefined), cursor: z.string().max(200).optional().catch(undefined), done: z.enum(['created', 'saved', 'deleted']).optional().catch(undefined) });
const DONE = { created: 'The permission was created.', saved: 'The permission was saved.', deleted: 'The permission was deleted.' } as const;
const permissionForm = z.object({ csrf: z.string().max(100), name: nameSchema, codename: codenameSchema, description: z.string().max(1000).default('') });
const notSaved = ['The form was not complete: a name (at most 100 characters) and a codename such as documents.view (lower-case words separated by dots) are needed.'];

const fields = (p: PermissionRow) => ({ id: p.id, name: p.name, codename: p.codename, description: p.description, builtin: p.builtin });

export async function adminPermissionRoutes(app: FastifyInstance, deps: { context: AdminContext; rbac: RbacService }): Promise<void> {
  const { context, rbac } = deps;

  app.get('/admin/permissions', { config }, async (request, reply) => {
    const query = listQuery.parse(request.query);
    const page = await rbac.listPermissions({ limit: PAGE_SIZE, cursor: query.cursor, codename: query.codename || undefined });
    return context.send(request, reply, 200, 'permissions', {
      title: 'Permissions',
      current: '/admin/permissions',
      notice: query.done ? DONE[query.done] : undefined,
      codename: query.codename ?? '',
      permissions: page.items.map(fields),
      links: pageLinks('/admin/permissions', { codename: query.codename }, page, query.cursor),
    });
  });

  app.get('/admin/permissions/new', { config }, async (request, reply) =>
    context.send(request, reply, 200, 'permissions-form', { title: 'New permission', current: '/admin/permissions', action: '/admin/permissions', permission: undefined, fields: { name: '', codename: '', description: '' } }),
  );

  app.post('/admin/permissions', { config }, async (request, reply) => {
    const form = permissionForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not saved', notSaved);
    await rbac.createPermission(form.data, context.actorOf(request));
    return seeOther(reply, '/admin/permissions?done=created');
  });

  app.get('/admin/permissions/:id', { config }, async (request, reply) => {
    const permission = await rbac.getPermission(idParams.parse(request.params).id);
    return context.send(request, reply, 200, 'permissions-form', {
      title: `Permission ${permission.codename}`,
      current: '/admin/permissions',
      action: `/admin/permissions/${permission.id}`,
      permission: fields(permission),
      fields: fields(permission),
    });
  });

  app.post('/admin/permissions/:id', { config }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const form = permissionForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not saved', notSaved);
    await rbac.updatePermission(id, form.data, context.actorOf(request));
    return seeOther(reply, '/admin/permissions?done=saved');
  });

  app.get('/admin/permissions/:id/delete', { config }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const permission = await rbac.getPermission(id);
    const dependents = await rbac.permissionDependents(id);
    // The dry run needs the right to delete it (holding it): refused, the page still shows what depends on it.
    const dryRun = permission.builtin
      ? undefined
      : await rbac.deletePermission(id, context.actorOf(request), { dryRun: true }).catch((err: unknown) => {
          if (err instanceof AppError && err.status === 403) return undefined;
          throw err;
        });
    return context.send(request, reply, 200, 'permissions-delete', {
      title: `Delete permission ${permission.codename}?`,
      current: '/admin/permissions',
      permission: fields(permission),
      roles: dependents.roles,
      grants: dependents.grants,
      radius: dryRun ? blastRadius(dryRun) : undefined,
      mayDelete: !permission.builtin && dryRun !== undefined,
    });
  });

  app.post('/admin/permissions/:id/delete', { config }, async (request, reply) => {
    await rbac.deletePermission(idParams.parse(request.params).id, context.actorOf(request));
    return seeOther(reply, '/admin/permissions?done=deleted');
  });
}
