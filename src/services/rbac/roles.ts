/**
 * Roles: list, show (with what they hold through inheritance), create, replace, delete. A role's parents are
 * roles it inherits from; the graph stays acyclic (checked under one advisory lock, so two concurrent edits
 * cannot close a cycle between them). The built-in admin role keeps its name and auth.superuser.
 * No escalation: creating, changing or deleting a role needs holding everything it confers, before and after.
 */
import { AppError } from '../../errors/index.js';
import { decodeCursor, mapPage, toPage, type Page } from '../../lib/pagination.js';
import type { RbacQueries, RoleRow } from '../../queries/rbac.js';
import { ADMIN_ROLE } from './builtins.js';
import { SUPERUSER } from './effective.js';
import { isUuid } from '../../lib/uuid.js';
import { auditEvent, notFound, type Actor, type RbacWritePath } from './write-path.js';

/** A role as it is replaced: omitted lists are empty, an omitted level is 0. */
export interface RoleInput {
  name: string;
  description?: string | undefined;
  permissions?: string[] | undefined;
  parents?: string[] | undefined;
  level?: number | undefined;
  mfaRequired?: boolean | undefined;
}

export type RoleWithLinks = RoleRow & { permissions: string[]; parents: string[] };

/** The role as the API answers it and the audit log records it (before and after a change): one view for both. */
export function roleView(r: RoleWithLinks) {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    permissions: r.permissions,
    parents: r.parents,
    level: r.level,
    mfa_required: r.mfaRequired,
    builtin: r.builtin,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

/** Users whose effective permissions follow this role at `at`: holders of it or of any role inheriting from it. */
export const usersAffectedByRole = (roleId: string, at: Date) => async (q: RbacQueries) => q.findUsersHoldingRoles(await q.findRoleDescendants(roleId), at);

async function withLinks(q: RbacQueries, row: RoleRow): Promise<RoleWithLinks> {
  return { ...row, ...((await q.findRoleLinks([row.id])).get(row.id) ?? { permissions: [], parents: [] }) };
}

export function createRoleCommands(path: RbacWritePath) {
  const { queries, write, dryRun, assertConfers, assertManagesRole, clock } = path;

  async function resolveRoleInput(q: RbacQueries, input: Required<RoleInput>, selfId?: string) {
    const perms = await q.findPermissionsByCodenames([...new Set(input.permissions)]);
    const missingPerm = input.permissions.find((c) => !perms.some((p) => p.codename === c));
    if (missingPerm) throw new AppError('invalid_request', `permissions: unknown permission ${missingPerm}`);
    const parents = await q.findRolesByNames([...new Set(input.parents)]);
    const missingParent = input.parents.find((n) => !parents.some((p) => p.name === n));
    if (missingParent) throw new AppError('invalid_request', `parents: unknown role ${missingParent}`);
    const inherited = await q.findRoleClosure(parents.map((p) => p.id));
    // A cycle: the role would become its own ancestor. Name the parent that closes it, in plain words.
    if (selfId && inherited.roleIds.has(selfId)) {
      let closing = parents[0]?.name ?? input.name;
      for (const parent of parents) if ((await q.findRoleClosure([parent.id])).roleIds.has(selfId)) closing = parent.name;
      const message =
        closing === input.name
          ? `${input.name} cannot inherit from itself`
          : `${input.name} cannot inherit from ${closing}, because ${closing} already inherits from ${input.name}: the roles would inherit from each other in a loop`;
      throw new AppError('role_cycle', message, 409);
    }
    const effective = new Set([...inherited.permissions, ...perms.map((p) => p.codename)]);
    return { permissionIds: perms.map((p) => p.id), parentIds: parents.map((p) => p.id), effective, level: Math.max(input.level, inherited.level) };
  }

  const complete = (input: RoleInput): Required<RoleInput> => ({
    name: input.name,
    description: input.description ?? '',
    permissions: input.permissions ?? [],
    parents: input.parents ?? [],
    level: input.level ?? 0,
    mfaRequired: input.mfaRequired ?? false,
  });

  return {
    /** By name; the cursor is the last row's (name, id). */
    async listRoles(args: { limit: number; cursor?: string | undefined; name?: string | undefined }): Promise<Page<RoleWithLinks>> {
      const page = toPage(await queries.listRoles({ ...args, after: decodeCursor(args.cursor) }), args.limit, (row) => ({ key: row.name, id: row.id }));
      const links = await queries.findRoleLinks(page.items.map((r) => r.id));
      return mapPage(page, (r): RoleWithLinks => ({ ...r, ...(links.get(r.id) ?? { permissions: [], parents: [] }) }));
    },
    async getRole(id: string): Promise<RoleWithLinks & { effectivePermissions: string[]; effectiveLevel: number }> {
      const row = isUuid(id) ? await queries.findRoleById(id) : undefined;
      if (!row) throw notFound('role');
      const closure = await queries.findRoleClosure([row.id]);
      return { ...(await withLinks(queries, row)), effectivePermissions: [...closure.permissions].sort(), effectiveLevel: closure.level };
    },
    /** Holders of each role now (users with an unexpired assignment), for role listings. */
    holderCounts: (roleIds: string[]) => queries.countUserHoldersByRoles(roleIds, clock()),
    /** What deleting a role takes away: its users (the first `limit`, by email), clients and child roles. */
    async roleHolders(id: string, limit: number) {
      const row = isUuid(id) ? await queries.findRoleById(id) : undefined;
      if (!row) throw notFound('role');
      const [holders, counts] = await Promise.all([queries.findRoleHolders(id, limit), queries.countRoleHolders(id)]);
      return { ...holders, counts };
    },
    /** The role of that name, if there is one. */
    async findRole(name: string): Promise<RoleWithLinks | undefined> {
      const row = await queries.findRoleByName(name);
      return row ? withLinks(queries, row) : undefined;
    },
    async createRole(partial: RoleInput, actor: Actor): Promise<RoleWithLinks> {
      const input = complete(partial);
      return write(async (q) => {
        await q.lockRoleGraph();
        if (await q.findRoleByName(input.name)) throw new AppError('conflict', `a role named ${input.name} already exists`, 409);
        const resolved = await resolveRoleInput(q, input);
        assertConfers(actor, resolved.effective, resolved.level, `creating role ${input.name}`);
        const row = await q.insertRole({ name: input.name, description: input.description, level: input.level, mfaRequired: input.mfaRequired });
        await q.replaceRolePermissions(row.id, resolved.permissionIds);
        await q.replaceRoleParents(row.id, resolved.parentIds);
        const after = await withLinks(q, row);
        return { result: after, events: [auditEvent(actor, 'role.created', { type: 'role', id: row.id }, { before: null, after: roleView(after) })] };
      });
    },
    async updateRole(id: string, partial: RoleInput, actor: Actor, options: { dryRun?: boolean } = {}) {
      const input = complete(partial);
      const apply = async (q: RbacQueries) => {
        await q.lockRoleGraph();
        const existing = isUuid(id) ? await q.findRoleById(id) : undefined;
        if (!existing) throw notFound('role');
        if (existing.builtin && input.name !== existing.name) throw new AppError('conflict', `${existing.name} is built in: it cannot be renamed`, 409);
        await assertManagesRole(q, actor, existing, 'changing');
        if (input.name !== existing.name && (await q.findRoleByName(input.name))) throw new AppError('conflict', `a role named ${input.name} already exists`, 409);
        const resolved = await resolveRoleInput(q, input, id);
        assertConfers(actor, resolved.effective, resolved.level, `changing role ${existing.name}`);
        const before = await withLinks(q, existing);
        if (existing.builtin && existing.name === ADMIN_ROLE && !before.permissions.every((p) => input.permissions.includes(p))) {
          throw new AppError('conflict', `${ADMIN_ROLE} is built in: it keeps ${SUPERUSER}`, 409);
        }
        const row = await q.updateRole(id, { name: input.name, description: input.description, level: input.level, mfaRequired: input.mfaRequired });
        if (!row) throw notFound('role');
        await q.replaceRolePermissions(id, resolved.permissionIds);
        await q.replaceRoleParents(id, resolved.parentIds);
        const after = await withLinks(q, row);
        return { result: after, events: [auditEvent(actor, 'role.updated', { type: 'role', id }, { before: roleView(before), after: roleView(after) })] };
      };
      if (options.dryRun) {
        if (!isUuid(id) || !(await queries.findRoleById(id))) throw notFound('role');
        return dryRun(usersAffectedByRole(id, clock()), apply);
      }
      return write(apply);
    },
    async deleteRole(id: string, actor: Actor): Promise<void> {
      return write(async (q) => {
        await q.lockRoleGraph();
        const existing = isUuid(id) ? await q.findRoleById(id) : undefined;
        if (!existing) throw notFound('role');
        if (existing.builtin) throw new AppError('conflict', `${existing.name} is built in and cannot be deleted`, 409);
        await assertManagesRole(q, actor, existing, 'deleting');
        const before = await withLinks(q, existing);
        const holders = await q.countRoleHolders(id);
        await q.deleteRole(id);
        return { result: undefined, events: [auditEvent(actor, 'role.deleted', { type: 'role', id }, { before: roleView(before), after: null, removed: holders })] };
      });
    },
  };
}
