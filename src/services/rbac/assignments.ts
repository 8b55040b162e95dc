/**
 * Role assignments: of users (optionally until `expires_at`, judged by the injected clock) and of
 * service-account clients. No escalation: assigning or removing a role needs holding everything it confers.
 */
import { AppError } from '../../errors/index.js';
import { resolveSubjects, type Effective } from './effective.js';
import { isUuid } from '../../lib/uuid.js';
import { auditEvent, notFound, type Actor, type RbacWritePath } from './write-path.js';

export interface Assignment {
  roleId: string;
  role: string;
  expiresAt: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
/** The assignment as the API answers it and the audit log records it: one view for both. */
export const assignmentView = (a: Assignment) => ({ role_id: a.roleId, role: a.role, expires_at: iso(a.expiresAt) });

export function createAssignmentCommands(path: RbacWritePath) {
  const { queries, write, dryRun, assertManagesRole, clock } = path;
  const theUser = async (userId: string) => (isUuid(userId) ? [userId] : []);

  return {
    /** A user's assignments; `active` is false once `expiresAt` has passed. */
    async listUserRoles(userId: string): Promise<Array<Assignment & { active: boolean; createdAt: Date }>> {
      if (!isUuid(userId) || !(await queries.userExists(userId))) throw notFound('user');
      const now = clock().getTime();
      return (await queries.listUserRoles(userId)).map((r) => ({
        roleId: r.roleId,
        role: r.name,
        expiresAt: r.expiresAt,
        active: !r.expiresAt || r.expiresAt.getTime() > now,
        createdAt: r.createdAt,
      }));
    },
    async assignRole(userId: string, input: { role: string; expiresAt?: Date | undefined }, actor: Actor, options: { dryRun?: boolean } = {}) {
      const apply = async (q: typeof queries) => {
        if (!isUuid(userId) || !(await q.userExists(userId))) throw notFound('user');
        const role = await q.findRoleByName(input.role);
        if (!role) throw new AppError('invalid_request', `role: unknown role ${input.role}`);
        const expiresAt = input.expiresAt ?? null;
        if (expiresAt && expiresAt.getTime() <= clock().getTime()) throw new AppError('invalid_request', 'expires_at: must be in the future');
        await assertManagesRole(q, actor, role, 'assigning');
        const before = await q.findUserRole(userId, role.id);
        await q.upsertUserRole(userId, role.id, expiresAt);
        const after: Assignment = { roleId: role.id, role: role.name, expiresAt };
        const was = before ? assignmentView({ roleId: role.id, role: role.name, expiresAt: before.expiresAt }) : null;
        return { result: after, events: [auditEvent(actor, 'role.assigned', { type: 'user', id: userId }, { before: was, after: assignmentView(after) })] };
      };
      if (options.dryRun) return dryRun(async () => theUser(userId), apply);
      return write(apply);
    },
    async unassignRole(userId: string, roleId: string, actor: Actor, options: { dryRun?: boolean } = {}) {
      const apply = async (q: typeof queries) => {
        if (!isUuid(userId) || !(await q.userExists(userId))) throw notFound('user');
        const role = isUuid(roleId) ? await q.findRoleById(roleId) : undefined;
        const existing = role ? await q.findUserRole(userId, role.id) : undefined;
        if (!role || !existing) throw notFound('assignment');
        await assertManagesRole(q, actor, role, 'unassigning');
        await q.deleteUserRole(userId, role.id);
        const before = assignmentView({ roleId: role.id, role: role.name, expiresAt: existing.expiresAt });
        return { result: undefined, events: [auditEvent(actor, 'role.unassigned', { type: 'user', id: userId }, { before, after: null })] };
      };
      if (options.dryRun) return dryRun(async () => theUser(userId), apply);
      return write(apply);
    },
    /** Gives a service-account client a role (it keeps the roles it holds); answers false when it held it already. */
    async assignClientRole(clientId: string, roleName: string, actor: Actor): Promise<boolean> {
      return write(async (q) => {
        const role = await q.findRoleByName(roleName);
        if (!role) throw new AppError('invalid_request', `role: unknown role ${roleName}`);
        if (!(await q.clientExists(clientId))) throw notFound('client');
        await assertManagesRole(q, actor, role, 'assigning');
        if ((await q.listClientRoleNames(clientId)).includes(role.name)) return { result: false, events: [] };
        await q.insertClientRole(clientId, role.id);
        return { result: true, events: [auditEvent(actor, 'role.assigned', { type: 'client', id: clientId }, { before: null, after: { role_id: role.id, role: role.name } })] };
      });
    },
    /** A service-account client's roles (404 for an unknown client). */
    async listClientRoles(clientId: string): Promise<Array<{ roleId: string; role: string; createdAt: Date }>> {
      if (!(await queries.clientExists(clientId))) throw notFound('client');
      return (await queries.listClientRoles(clientId)).map((r) => ({ roleId: r.roleId, role: r.name, createdAt: r.createdAt }));
    },
    /** Takes a role from a service-account client; 404 when the client does not hold it. */
    async unassignClientRole(clientId: string, roleId: string, actor: Actor): Promise<void> {
      await write(async (q) => {
        const role = isUuid(roleId) ? await q.findRoleById(roleId) : undefined;
        if (!role || !(await q.clientExists(clientId)) || !(await q.listClientRoleNames(clientId)).includes(role.name)) throw notFound('assignment');
        await assertManagesRole(q, actor, role, 'unassigning');
        await q.deleteClientRole(clientId, role.id);
        return { result: undefined, events: [auditEvent(actor, 'role.unassigned', { type: 'client', id: clientId }, { before: { role_id: role.id, role: role.name }, after: null })] };
      });
    },
    /**
     * Changing a service-account client (its secret, its authentication, deleting it) hands over or takes away
     * everything its roles confer: only someone who could assign all of them may (no escalation by taking over a
     * client that holds more than you).
     */
    async assertManagesClient(clientId: string, actor: Actor, verb: string): Promise<void> {
      if (actor.effective.superuser) return;
      const roleIds = (await queries.listClientRoles(clientId)).map((r) => r.roleId);
      if (!roleIds.length) return;
      const closure = await queries.findRoleClosure(roleIds);
      path.assertConfers(actor, closure.permissions, closure.level, `${verb} client ${clientId}`);
    },
    /** A user's effective permissions, roles, level and object grants now. */
    async userPermissions(userId: string): Promise<Effective | undefined> {
      if (!isUuid(userId) || !(await queries.userExists(userId))) throw notFound('user');
      return (await resolveSubjects(path.db, 'user', [userId], { at: clock() })).get(userId);
    },
  };
}
