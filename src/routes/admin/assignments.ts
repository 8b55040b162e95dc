/**
 * Bulk assignment in the admin console (auth.roles.manage, as assigning through the API): a role given to
 * a list of emails at once, optionally until a time. First a preview (nothing written): who gains what and
 * which emails name nobody; then the confirmation re-posts the same fields and the service assigns the role
 * to every known user in one transaction, with the no-escalation rule of a single assignment.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MAX_PAGE_SIZE } from '../../lib/pagination.js';
import { blastRadius, MAX_BULK_EMAILS, parseEmailList, type RbacService } from '../../services/rbac/service.js';
import { dateView } from '../../views/date.js';
import { seeOther } from '../../views/page.js';
import type { AdminContext } from './context.js';

const config = { page: true, adminPermission: 'auth.roles.manage' } as const;
/** `datetime-local` sends "2026-12-31T23:59" (seconds optional); the page says it is UTC. */
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/;
const bulkForm = z.object({
  csrf: z.string().max(100),
  // A generous bound for MAX_BULK_EMAILS addresses; the service counts them.
  emails: z.string().max(MAX_BULK_EMAILS * 330),
  role: z.string().min(1).max(100),
  expires_at: z.union([z.literal(''), z.string().regex(LOCAL_TIME)]).default(''),
});
const doneQuery = z.object({ assigned: z.coerce.number().int().min(0).optional().catch(undefined), role: z.string().max(100).optional().catch(undefined), unknown: z.coerce.number().int().min(0).optional().catch(undefined) });
const notValid = ['The form was not complete: a list of emails, a role and, if the role should expire, a date and time are needed.'];

export async function adminAssignmentRoutes(app: FastifyInstance, deps: { context: AdminContext; rbac: RbacService }): Promise<void> {
  const { context, rbac } = deps;

  const roleNames = async () => (await rbac.listRoles({ limit: MAX_PAGE_SIZE })).items.map((r) => r.name);
  const inputOf = (form: z.output<typeof bulkForm>) => ({
    emails: parseEmailList(form.emails),
    role: form.role,
    expiresAt: form.expires_at ? new Date(`${form.expires_at}Z`) : undefined,
  });

  app.get('/admin/assignments', { config }, async (request, reply) => {
    const done = doneQuery.parse(request.query);
    return context.send(request, reply, 200, 'assignments', {
      title: 'Bulk assignment',
      current: '/admin/assignments',
      notice: done.assigned !== undefined && done.role ? `${done.role} was assigned to ${done.assigned} ${done.assigned === 1 ? 'user' : 'users'}${done.unknown ? `; ${done.unknown} ${done.unknown === 1 ? 'email names' : 'emails name'} nobody` : ''}.` : undefined,
      roles: await roleNames(),
      maxEmails: MAX_BULK_EMAILS,
    });
  });

  app.post('/admin/assignments/preview', { config }, async (request, reply) => {
    const form = bulkForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not valid', notValid);
    const preview = await rbac.previewBulkAssignment(inputOf(form.data), context.actorOf(request));
    return context.send(request, reply, 200, 'assignments-preview', {
      title: `Assign ${preview.role}?`,
      current: '/admin/assignments',
      role: preview.role,
      expires: dateView(preview.expiresAt),
      users: preview.users,
      unknown: preview.unknown,
      radius: blastRadius(preview.dryRun),
      changes: preview.dryRun.changes.map((c) => ({ email: c.email ?? c.userId, gained: c.gained })),
      fields: { emails: preview.users.map((u) => u.email).join(' '), role: preview.role, expires_at: form.data.expires_at },
    });
  });

  app.post('/admin/assignments', { config }, async (request, reply) => {
    const form = bulkForm.safeParse(request.body);
    if (!form.success) return context.message(request, reply, 400, 'Not valid', notValid);
    const result = await rbac.applyBulkAssignment(inputOf(form.data), context.actorOf(request));
    const query = new URLSearchParams({ assigned: String(result.assigned.length), role: result.role, unknown: String(result.unknown.length) });
    return seeOther(reply, `/admin/assignments?${query.toString()}`);
  });
}
