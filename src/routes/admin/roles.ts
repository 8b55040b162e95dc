/**
 * Roles in the admin console (auth.roles.manage): the list (level, MFA requirement, holders), creating one,
 * editing one with a preview of its blast radius BEFORE it is saved (the service's dry run: who gains and
 * who loses what), and deleting one after its holders are shown. The same rbac service calls as
 * /api/auth/roles/, with the console's Actor, so no escalation, cycles and built-in rules are the API's.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { pageLinks } from '../../lib/pagination.js';
import { blastRadius, type RbacService } from '../../services/rbac/service.js';
import { dateView } from '../../views/date.js';
import { seeOther } from '../../views/page.js';
import type { AdminContext } from './context.js';
import { editorModel, fieldsOfInput, fieldsOfRole, roleForm, roleInputOf } from './roles-form.js';

/** A screenful of roles; holders shown before a delete. */
const PAGE_SIZE = 50;
const HOLDERS_SHOWN = 100;

const config = { page: true, adminPermission: 'auth.roles.manage' } as const;
const idParams = z.object({ id: z.string().max(100) });
const listQuery = z.object({ name: z.string().max(100).optional().catch(undefined), cursor: z.string().max(200).optional().catch(undefined), done: z.enum(['created', 'saved', 'deleted']).optional().catch(undefined) });
const DONE = { created: 'The role was created.', saved: 'The role was saved.', deleted: 'The role was deleted.' } as const;
const notSaved = ['The form was not complete: a name (at most 100 characters) and a level (a whole number from 0 to 1000000) are needed.'];

export async function adminRoleRoutes(app: FastifyInstance, deps: { context: AdminContext; rbac: RbacService }): Promise<void> {
  const { context, rbac } = deps;

  app.get('/admin/roles', { config }, async (request, reply) => {
    const query = listQuery.parse(request.query);
    const page = await rbac.listRoles({ limit: PAGE_SIZE, cursor: query.cursor, name: query.name || undefined });
    const holders = await rbac.holderCounts(page.items.map((r) => r.id));
    return context.send(request, reply, 200, 'roles', {
      title: 'Roles',
      current: '/admin/roles',
      notice: query.done ? DONE[query.done] : undefined,
      name: query.name ?? '',
      roles: page.items.map((r) => ({ id: r.id, name: r.name, description: r.description, level: r.level, mfaRequired: r.mfaRequired, builtin: r.builtin, parents: r.parents, holders: holders.get(r.id) ?? 0 })),
      links: pageLinks('/admin/roles', { name: query.name }, page, query.cursor),
    });
  });

  app.get('/admin/roles/new', { config }, async (request, reply) =>
    context.send(request, reply, 200, 'roles-form', {
      title: 'New role',
      current: '/admin/roles',
      action: '/admin/roles',
      ...(await editorModel(rbac, { name: '', description: '', permissions: [], parents: [], level: 0, mfaRequired: false })),
    }),
  );

  app.post('/admin/roles', { config }, async (request, reply) => {
    const form = roleForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not saved', notSaved);
    const role = await rbac.createRole(roleInputOf(form.data), context.actorOf(request));
    return seeOther(reply, `/admin/roles/${role.id}?done=created`);
  });

  app.get('/admin/roles/:id', { config }, async (request, reply) => {
    const role = await rbac.getRole(idParams.parse(request.params).id);
    const done = listQuery.shape.done.parse((request.query as { done?: unknown }).done);
    return context.send(request, reply, 200, 'roles-form', {
      title: `Role ${role.name}`,
      current: '/admin/roles',
      notice: done ? DONE[done] : undefined,
      role: { id: role.id, name: role.name, builtin: role.builtin, effectivePermissions: role.effectivePermissions, effectiveLevel: role.effectiveLevel, updated: dateView(role.updatedAt) },
      action: `/admin/roles/${role.id}/preview`,
      ...(await editorModel(rbac, fieldsOfRole(role), role.id)),
    });
  });

  // The preview: the edit run as a dry run (nothing written), its blast radius, and a form that re-posts
  // the same fields to save them, or a link back that leaves the role as it was.
  app.post('/admin/roles/:id/preview', { config }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const form = roleForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not saved', notSaved);
    const input = roleInputOf(form.data);
    const role = await rbac.getRole(id);
    const dryRun = await rbac.updateRole(id, input, context.actorOf(request), { dryRun: true });
    if (!('dryRun' in dryRun)) throw new Error('a dry run answers a dry run');
    return context.send(request, reply, 200, 'roles-preview', {
      title: `Save role ${role.name}?`,
      current: '/admin/roles',
      role: { id: role.id, name: role.name },
      fields: fieldsOfInput(input),
      radius: blastRadius(dryRun),
      changes: dryRun.changes.map((c) => ({ email: c.email ?? c.userId, gained: c.gained, lost: c.lost, levelBefore: c.levelBefore, levelAfter: c.levelAfter })),
    });
  });

  app.post('/admin/roles/:id', { config }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const form = roleForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not saved', notSaved);
    await rbac.updateRole(id, roleInputOf(form.data), context.actorOf(request));
    return seeOther(reply, `/admin/roles/${id}?done=saved`);
  });

  app.get('/admin/roles/:id/delete', { config }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const role = await rbac.getRole(id);
    const holders = await rbac.roleHolders(id, HOLDERS_SHOWN);
    return context.send(request, reply, 200, 'roles-delete', {
      title: `Delete role ${role.name}?`,
      current: '/admin/roles',
      role: { id: role.id, name: role.name, builtin: role.builtin },
      users: holders.users.map((u) => ({ id: u.userId, email: u.email, expires: dateView(u.expiresAt) })),
      clients: holders.clients,
      children: holders.children,
      counts: holders.counts,
    });
  });

  app.post('/admin/roles/:id/delete', { config }, async (request, reply) => {
    await rbac.deleteRole(idParams.parse(request.params).id, context.actorOf(request));
    return seeOther(reply, '/admin/roles?done=deleted');
  });
}
