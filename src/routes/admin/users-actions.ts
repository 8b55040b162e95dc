/**
 * The actions of a user's page, each a form POST answered with 303 back to the page. The console's guard has
 * checked the session, the permission each declares and the CSRF token before a handler runs; the services
 * apply the same no-escalation rules as the API (outranking the user; conferring only what one holds), and
 * audit with the administrator as actor. An unknown user or assignment answers 404 and changes nothing.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { seeOther } from '../../views/page.js';
import type { UserPageDeps } from './users.js';
import type { UserNotice } from './users-view.js';

const idParams = z.object({ id: z.string() });
const assignmentParams = z.object({ id: z.string(), roleId: z.string() });
const disabledForm = z.object({ csrf: z.string(), disabled: z.enum(['true', 'false']) });
/** `datetime-local` has no zone: the form says the time is UTC. */
const LOCAL_MINUTE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/;
const assignForm = z.object({
  csrf: z.string(),
  role: z.string().min(1).max(100),
  expires_at: z.union([z.literal(''), z.string().regex(LOCAL_MINUTE)]).optional(),
});

export async function adminUserActions(app: FastifyInstance, deps: UserPageDeps): Promise<void> {
  const { context, userAdmin } = deps;
  const users = { page: true, adminPermission: 'auth.users.manage' } as const;
  // Role assignments are authorization changes: the API's permission for them, not only managing users.
  const roles = { page: true, adminPermission: 'auth.roles.manage' } as const;
  const back = (id: string, done: UserNotice) => `/admin/users/${encodeURIComponent(id)}?done=${done}`;

  app.post('/admin/users/:id/disabled', { config: users }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const form = disabledForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not saved', ['The form was not valid.']);
    const disabled = form.data.disabled === 'true';
    await userAdmin.updateUser(id, { disabled }, context.actorOf(request));
    return seeOther(reply, back(id, disabled ? 'disabled' : 'enabled'));
  });

  app.post('/admin/users/:id/unlock', { config: users }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    await userAdmin.unlockUser(id, context.actorOf(request));
    return seeOther(reply, back(id, 'unlocked'));
  });

  app.post('/admin/users/:id/mfa-reset', { config: users }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    await userAdmin.resetUserMfa(id, context.actorOf(request));
    return seeOther(reply, back(id, 'mfa_reset'));
  });

  app.post('/admin/users/:id/sessions-end', { config: users }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    await userAdmin.endUserSessions(id, context.actorOf(request));
    return seeOther(reply, back(id, 'sessions_ended'));
  });

  app.post('/admin/users/:id/roles', { config: roles }, async (request, reply) => {
    const { id } = idParams.parse(request.params);
    const form = assignForm.safeParse(request.body);
    const expiresAt = form.success && form.data.expires_at ? new Date(`${form.data.expires_at}:00Z`) : undefined;
    if (!form.success || (expiresAt && Number.isNaN(expiresAt.getTime()))) {
      return context.message(request, reply, 400, 'Not saved', ['Choose a role, and leave the expiry empty or give a date and time.']);
    }
    await deps.rbac.assignRole(id, { role: form.data.role, expiresAt }, context.actorOf(request));
    return seeOther(reply, back(id, 'role_assigned'));
  });

  app.post('/admin/users/:id/roles/:roleId/remove', { config: roles }, async (request, reply) => {
    const { id, roleId } = assignmentParams.parse(request.params);
    await deps.rbac.unassignRole(id, roleId, context.actorOf(request));
    return seeOther(reply, back(id, 'role_removed'));
  });
}
