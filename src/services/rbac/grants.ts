/**
 * Object grants: a permission on one object (type, id), to a user or to a role. No escalation: granting or
 * revoking needs holding the permission.
 */
import { AppError } from '../../errors/index.js';
import { decodeTimeCursor, toPage, type Page } from '../../lib/pagination.js';
import type { GrantListing, RbacQueries } from '../../queries/rbac.js';
import { isUuid } from '../../lib/uuid.js';
import { usersAffectedByRole } from './roles.js';
import { auditEvent, isUniqueViolation, notFound, type Actor, type RbacWritePath } from './write-path.js';

export interface GrantInput {
  /** Exactly one of userId and role. */
  userId?: string | undefined;
  role?: string | undefined;
  permission: string;
  object: { type: string; id: string };
}

/** The grant as the API answers it and the audit log records it: one view for both. */
export function grantView(g: GrantListing) {
  return {
    id: g.id,
    user_id: g.userId,
    role: g.roleName,
    role_id: g.roleId,
    permission: g.codename,
    object: { type: g.objectType, id: g.objectId },
    created_at: g.createdAt.toISOString(),
  };
}

const exists = () => new AppError('conflict', 'this grant already exists', 409);

export function createGrantCommands(path: RbacWritePath) {
  const { queries, write, dryRun, assertConfers, clock } = path;
  return {
    async listGrants(args: {
      limit: number;
      cursor?: string | undefined;
      userId?: string | undefined;
      role?: string | undefined;
      permission?: string | undefined;
      objectType?: string | undefined;
      objectId?: string | undefined;
    }): Promise<Page<GrantListing>> {
      const empty = { items: [], next_cursor: null };
      if (args.userId && !isUuid(args.userId)) return empty;
      const role = args.role ? await queries.findRoleByName(args.role) : undefined;
      if (args.role && !role) return empty;
      const [permission] = args.permission ? await queries.findPermissionsByCodenames([args.permission]) : [];
      if (args.permission && !permission) return empty;
      const rows = await queries.listGrants({
        limit: args.limit,
        after: decodeTimeCursor(args.cursor),
        userId: args.userId,
        roleId: role?.id,
        permissionId: permission?.id,
        objectType: args.objectType,
        objectId: args.objectId,
      });
      const page = toPage(rows, args.limit, (row) => ({ key: row.cursorKey, id: row.id }));
      return { items: page.items.map(({ cursorKey: _key, ...grant }) => grant), next_cursor: page.next_cursor };
    },
    async getGrant(id: string): Promise<GrantListing | undefined> {
      return isUuid(id) ? queries.findGrantById(id) : undefined;
    },
    /** Creates a grant; with `ifAbsent`, an existing identical grant is no error and answers undefined. */
    async createGrant(input: GrantInput, actor: Actor, options: { dryRun?: boolean; ifAbsent?: boolean } = {}) {
      const apply = async (q: RbacQueries) => {
        let userId: string | null = null;
        let roleId: string | null = null;
        if (input.userId) {
          if (!isUuid(input.userId) || !(await q.userExists(input.userId))) throw new AppError('invalid_request', 'user_id: unknown user');
          userId = input.userId;
        } else {
          const role = await q.findRoleByName(input.role ?? '');
          if (!role) throw new AppError('invalid_request', `role: unknown role ${input.role ?? ''}`);
          roleId = role.id;
        }
        const [permission] = await q.findPermissionsByCodenames([input.permission]);
        if (!permission) throw new AppError('invalid_request', `permission: unknown permission ${input.permission}`);
        assertConfers(actor, [permission.codename], 0, `granting ${permission.codename}`);
        const values = { userId, roleId, permissionId: permission.id, objectType: input.object.type, objectId: input.object.id };
        if (await q.findGrant(values)) {
          if (options.ifAbsent) return { result: undefined, events: [] };
          throw exists();
        }
        const row = await q.insertGrant(values).catch((err: unknown) => {
          throw isUniqueViolation(err) ? exists() : err;
        });
        const after = await q.findGrantById(row.id);
        if (!after) throw notFound('grant');
        return { result: after, events: [auditEvent(actor, 'grant.created', { type: 'grant', id: row.id }, { before: null, after: grantView(after) })] };
      };
      if (options.dryRun) {
        return dryRun(async (q) => {
          if (input.userId) return isUuid(input.userId) ? [input.userId] : [];
          const role = await q.findRoleByName(input.role ?? '');
          return role ? usersAffectedByRole(role.id, clock())(q) : [];
        }, apply);
      }
      return write(apply);
    },
    async deleteGrant(id: string, actor: Actor, options: { dryRun?: boolean } = {}) {
      const apply = async (q: RbacQueries) => {
        const existing = isUuid(id) ? await q.findGrantById(id) : undefined;
        if (!existing) throw notFound('grant');
        assertConfers(actor, [existing.codename], 0, `revoking ${existing.codename}`);
        await q.deleteGrant(id);
        return { result: undefined, events: [auditEvent(actor, 'grant.deleted', { type: 'grant', id }, { before: grantView(existing), after: null })] };
      };
      if (options.dryRun) {
        return dryRun(async (q) => {
          const g = isUuid(id) ? await q.findGrantById(id) : undefined;
          if (!g) return [];
          return g.userId ? [g.userId] : g.roleId ? usersAffectedByRole(g.roleId, clock())(q) : [];
        }, apply);
      }
      return write(apply);
    },
  };
}
