/**
 * Size: over 400 lines until the architecture issue splits it by concept (it is planned there, with the
 * split named); kept whole meanwhile so that security fixes landed in one place.
 *
 * Managing who may do what: permissions, roles (with inheritance, level, mfa_required), assignments and object
 * grants, plus the decisions answered from the cache. Framework-free: routes pass an Actor in.
 *
 * No escalation (nobody grants what they do not hold): unless the actor holds auth.superuser, it may only create, change, delete,
 * assign or unassign a role whose effective permissions (before and after the change) it holds itself and whose
 * effective level does not exceed its own; it may only create or delete grants of permissions it holds; it may
 * only change or delete permissions it holds, and renaming one's codename confers the new codename on every
 * holder, so it needs the new codename too.
 *
 * Every write runs in one transaction that also sends NOTIFY (delivered on commit to every replica), then
 * invalidates this process's cache and writes an audit event with before and after. `dryRun` runs the same
 * transaction, measures which users gain or lose what, and rolls back.
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db, DbOrTx } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import { encodeCursor, decodeCursor } from '../../lib/pagination.js';
import { createRbacQueries, type PermissionRow, type RbacQueries, type RoleRow } from '../../queries/rbac.js';
import type { AuditEvent, AuditService } from '../audit.js';
import type { RequestContext } from '../../lib/request-context.js';
import { RBAC_CHANNEL, type DecisionCache } from './cache.js';
import { decide, flatten, holds, isUuid, resolveSubjects, SUPERUSER, type CheckInput, type Decision, type Effective, type SubjectRef } from './effective.js';

/** The permissions keryu-auth's own APIs require; ensured at every start-up. */
export const BUILTIN_PERMISSIONS = {
  'auth.superuser': 'Everything in keryu-auth, and granting anything',
  'auth.roles.manage': 'Manage roles and role assignments',
  'auth.permissions.manage': 'Manage permissions',
  'auth.users.manage': 'Manage users',
  'auth.grants.manage': 'Manage object-level grants',
  'auth.tokens.manage': 'Manage tokens and sessions',
  'auth.audit.read': 'Read the audit log',
  'auth.check': 'Ask authorization decisions about other subjects',
} as const;
export type AuthPermission = keyof typeof BUILTIN_PERMISSIONS;
export const ADMIN_ROLE = 'admin';

export const nameSchema = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
export const codenameSchema = z
  .string()
  .max(100, 'must be at most 100 characters')
  .regex(/^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*$/, 'must be lower-case words separated by dots, such as documents.edit');
export const objectSchema = z.object({
  type: z.string().min(1).max(100).regex(/^[A-Za-z0-9._:-]+$/, 'must be letters, digits, . _ : -'),
  id: z.string().min(1).max(200),
});

export const permissionInputSchema = z
  .object({ name: nameSchema, codename: codenameSchema, description: z.string().max(1000).default('') })
  .strict();
export type PermissionInput = z.output<typeof permissionInputSchema>;

export const roleInputSchema = z
  .object({
    name: nameSchema,
    description: z.string().max(1000).default(''),
    permissions: z.array(codenameSchema).max(1000).default([]),
    parents: z.array(nameSchema).max(100).default([]),
    level: z.number().int().min(0).max(1_000_000).default(0),
    mfa_required: z.boolean().default(false),
  })
  .strict();
export type RoleInput = z.output<typeof roleInputSchema>;

export interface Actor {
  audit: AuditEvent['actor'];
  effective: Effective;
  context?: RequestContext | undefined;
}

export interface DryRunResult {
  dry_run: true;
  changes: Array<{ user_id: string; email: string | null; gained: string[]; lost: string[]; level_before: number; level_after: number }>;
}

class Rollback extends Error {
  constructor(readonly result: DryRunResult) {
    super('dry run');
  }
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function permissionView(p: PermissionRow) {
  return { id: p.id, name: p.name, codename: p.codename, description: p.description, builtin: p.builtin, created_at: iso(p.createdAt) as string, updated_at: iso(p.updatedAt) as string };
}

export function roleView(r: RoleRow, links: { permissions: string[]; parents: string[] }) {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    permissions: links.permissions,
    parents: links.parents,
    level: r.level,
    mfa_required: r.mfaRequired,
    builtin: r.builtin,
    created_at: iso(r.createdAt) as string,
    updated_at: iso(r.updatedAt) as string,
  };
}
export type RoleView = ReturnType<typeof roleView>;

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code === '23505' || e?.cause?.code === '23505';
}

const notFound = (what: string) => new AppError('not_found', `${what} not found`, 404);
const forbidden = (message: string, required: string) => new AppError('forbidden', message, 403, { required });

/** Serializes changes to the role graph, so two concurrent edits cannot close a cycle between them. */
const ROLE_GRAPH_LOCK = 0x6b72626163; // "krbac"

export interface RbacServiceDeps {
  db: Db;
  audit: AuditService;
  cache: DecisionCache;
}

export function createRbacService(deps: RbacServiceDeps) {
  const { db, cache } = deps;
  const queries = createRbacQueries(db);

  /** Runs a change in a transaction with NOTIFY; on commit invalidates the local cache and audits. */
  async function write<T>(change: (q: RbacQueries, tx: DbOrTx) => Promise<{ result: T; events: AuditEvent[] }>): Promise<T> {
    const { result, events } = await db.transaction(async (tx) => {
      const out = await change(createRbacQueries(tx), tx);
      await tx.execute(sql`select pg_notify(${RBAC_CHANNEL}, 'changed')`);
      return out;
    });
    cache.invalidate();
    await Promise.all(events.map((e) => deps.audit.record(e)));
    return result;
  }

  /** Runs a change, measures the effect on `affected(q)` users before and after, and rolls back. */
  async function dryRun(affected: (q: RbacQueries) => Promise<string[]>, change: (q: RbacQueries, tx: DbOrTx) => Promise<unknown>): Promise<DryRunResult> {
    try {
      await db.transaction(async (tx) => {
        const q = createRbacQueries(tx);
        const before = await resolveSubjects(tx, 'user', await affected(q));
        await change(q, tx);
        const after = await resolveSubjects(tx, 'user', [...new Set([...before.keys(), ...(await affected(q))])]);
        const changes: DryRunResult['changes'] = [];
        for (const [userId, now] of after) {
          const was = before.get(userId);
          const a = was ? flatten(was) : new Set<string>();
          const b = flatten(now);
          const gained = [...b].filter((p) => !a.has(p)).sort();
          const lost = [...a].filter((p) => !b.has(p)).sort();
          const levelBefore = was?.level ?? 0;
          if (gained.length || lost.length || levelBefore !== now.level) {
            changes.push({ user_id: userId, email: now.label ?? was?.label ?? null, gained, lost, level_before: levelBefore, level_after: now.level });
          }
        }
        changes.sort((x, y) => (x.email ?? '').localeCompare(y.email ?? ''));
        throw new Rollback({ dry_run: true, changes });
      });
    } catch (err) {
      if (err instanceof Rollback) return err.result;
      throw err;
    }
    throw new Error('dry run did not roll back');
  }

  /** No escalation: the actor must hold every permission in `codenames` (and reach `level`), unless superuser. */
  function assertConfers(actor: Actor, codenames: Iterable<string>, level: number, what: string): void {
    if (actor.effective.superuser) return;
    for (const codename of codenames) {
      if (!holds(actor.effective, codename)) throw forbidden(`${what} would confer ${codename}, which you do not hold`, codename);
    }
    if (level > actor.effective.level) throw forbidden(`${what} would confer level ${level}, above your level ${actor.effective.level}`, SUPERUSER);
  }

  async function roleLinks(q: RbacQueries, row: RoleRow) {
    return roleView(row, (await q.findRoleLinks([row.id])).get(row.id) ?? { permissions: [], parents: [] });
  }

  async function resolveRoleInput(q: RbacQueries, input: RoleInput, selfId?: string) {
    const perms = await q.findPermissionsByCodenames([...new Set(input.permissions)]);
    const missingPerm = input.permissions.find((c) => !perms.some((p) => p.codename === c));
    if (missingPerm) throw new AppError('invalid_request', `permissions: unknown permission ${missingPerm}`);
    const parents = await q.findRolesByNames([...new Set(input.parents)]);
    const missingParent = input.parents.find((n) => !parents.some((p) => p.name === n));
    if (missingParent) throw new AppError('invalid_request', `parents: unknown role ${missingParent}`);
    if (selfId) {
      // A cycle: the role would become its own ancestor.
      const closure = await q.findRoleClosure(parents.map((p) => p.id));
      if (closure.roleIds.has(selfId)) throw new AppError('role_cycle', `making ${input.parents.join(', ')} parents of ${input.name} would create a cycle`, 409);
    }
    const inherited = await q.findRoleClosure(parents.map((p) => p.id));
    const effective = new Set([...inherited.permissions, ...perms.map((p) => p.codename)]);
    return { permissionIds: perms.map((p) => p.id), parentIds: parents.map((p) => p.id), effective, level: Math.max(input.level, inherited.level) };
  }

  async function assertManagesRole(q: RbacQueries, actor: Actor, role: RoleRow, verb: string) {
    const closure = await q.findRoleClosure([role.id]);
    assertConfers(actor, closure.permissions, closure.level, `${verb} role ${role.name}`);
  }

  async function lockGraph(tx: DbOrTx) {
    await tx.execute(sql`select pg_advisory_xact_lock(${ROLE_GRAPH_LOCK})`);
  }

  const page = <T>(rows: T[], limit: number, cursorOf: (row: T) => { key: string; id: string }) => ({
    rows: rows.slice(0, limit),
    next_cursor: rows.length > limit && rows[limit - 1] ? encodeCursor(cursorOf(rows[limit - 1] as T)) : null,
  });

  async function grantView(q: RbacQueries, id: string) {
    const g = await q.findGrantById(id);
    return g ? toGrantView(g) : undefined;
  }
  function toGrantView(g: Awaited<ReturnType<RbacQueries['findGrantById']>> & object) {
    return {
      id: g.id,
      user_id: g.userId,
      role: g.roleName,
      role_id: g.roleId,
      permission: g.codename,
      object: { type: g.objectType, id: g.objectId },
      created_at: iso(g.createdAt) as string,
    };
  }

  const rolesOrUsersAffectedByRole = (roleId: string) => async (q: RbacQueries) => q.findUsersHoldingRoles(await q.findRoleDescendants(roleId));

  const service = {
    queries,
    cache,

    /** Idempotent: the auth.* permissions and the admin role holding auth.superuser. Safe on concurrent replicas. */
    async ensureBuiltins(): Promise<void> {
      await db.transaction(async (tx) => {
        const q = createRbacQueries(tx);
        for (const [codename, name] of Object.entries(BUILTIN_PERMISSIONS)) {
          await tx.execute(
            sql`insert into permissions (name, codename, description, builtin) values (${codename}, ${codename}, ${name}, true) on conflict do nothing`,
          );
        }
        await tx.execute(
          sql`insert into roles (name, description, builtin) values (${ADMIN_ROLE}, 'Built-in: holds auth.superuser', true) on conflict do nothing`,
        );
        const admin = await q.findRoleByName(ADMIN_ROLE);
        const [su] = await q.findPermissionsByCodenames([SUPERUSER]);
        if (admin && su) await q.addRolePermission(admin.id, su.id);
      });
    },

    // ---- permissions
    async listPermissions(args: { limit: number; cursor?: string | undefined; codename?: string | undefined; name?: string | undefined }) {
      const rows = await queries.listPermissions({ ...args, after: decodeCursor(args.cursor) });
      const p = page(rows, args.limit, (r) => ({ key: r.codename, id: r.id }));
      return { items: p.rows.map(permissionView), next_cursor: p.next_cursor };
    },
    async getPermission(id: string) {
      const row = isUuid(id) ? await queries.findPermissionById(id) : undefined;
      if (!row) throw notFound('permission');
      return permissionView(row);
    },
    async createPermission(input: PermissionInput, actor: Actor) {
      return write(async (q) => {
        if (await q.findPermissionConflict(input.name, input.codename)) throw new AppError('conflict', 'a permission with this name or codename already exists', 409);
        const row = await q.insertPermission(input).catch((err: unknown) => {
          throw isUniqueViolation(err) ? new AppError('conflict', 'a permission with this name or codename already exists', 409) : err;
        });
        const after = permissionView(row);
        return { result: after, events: [event(actor, 'permission.created', { type: 'permission', id: row.id }, { before: null, after })] };
      });
    },
    async updatePermission(id: string, input: PermissionInput, actor: Actor) {
      return write(async (q) => {
        const existing = isUuid(id) ? await q.findPermissionById(id) : undefined;
        if (!existing) throw notFound('permission');
        if (existing.builtin && (input.codename !== existing.codename || input.name !== existing.name)) {
          throw new AppError('conflict', `${existing.codename} is built in: its name and codename cannot change`, 409);
        }
        assertConfers(actor, [existing.codename], 0, `changing permission ${existing.codename}`);
        // A new codename is a new permission for every role and grant that holds this one: granting it to all
        // of them at once, so the usual no-escalation rule applies to the new codename as well.
        if (input.codename !== existing.codename) assertConfers(actor, [input.codename], 0, `renaming ${existing.codename} to ${input.codename}`);
        if (await q.findPermissionConflict(input.name, input.codename, id)) throw new AppError('conflict', 'a permission with this name or codename already exists', 409);
        const row = await q.updatePermission(id, input);
        if (!row) throw notFound('permission');
        const after = permissionView(row);
        return { result: after, events: [event(actor, 'permission.updated', { type: 'permission', id }, { before: permissionView(existing), after })] };
      });
    },
    async deletePermission(id: string, actor: Actor) {
      return write(async (q) => {
        const existing = isUuid(id) ? await q.findPermissionById(id) : undefined;
        if (!existing) throw notFound('permission');
        if (existing.builtin) throw new AppError('conflict', `${existing.codename} is built in and cannot be deleted`, 409);
        assertConfers(actor, [existing.codename], 0, `deleting permission ${existing.codename}`);
        await q.deletePermission(id);
        return { result: undefined, events: [event(actor, 'permission.deleted', { type: 'permission', id }, { before: permissionView(existing), after: null })] };
      });
    },

    // ---- roles
    async listRoles(args: { limit: number; cursor?: string | undefined; name?: string | undefined }) {
      const rows = await queries.listRoles({ ...args, after: decodeCursor(args.cursor) });
      const p = page(rows, args.limit, (r) => ({ key: r.name, id: r.id }));
      const links = await queries.findRoleLinks(p.rows.map((r) => r.id));
      return { items: p.rows.map((r) => roleView(r, links.get(r.id) ?? { permissions: [], parents: [] })), next_cursor: p.next_cursor };
    },
    async getRole(id: string) {
      const row = isUuid(id) ? await queries.findRoleById(id) : undefined;
      if (!row) throw notFound('role');
      const closure = await queries.findRoleClosure([row.id]);
      return { ...(await roleLinks(queries, row)), effective_permissions: [...closure.permissions].sort(), effective_level: closure.level };
    },
    async createRole(input: RoleInput, actor: Actor) {
      return write(async (q, tx) => {
        await lockGraph(tx);
        if (await q.findRoleByName(input.name)) throw new AppError('conflict', `a role named ${input.name} already exists`, 409);
        const resolved = await resolveRoleInput(q, input);
        assertConfers(actor, resolved.effective, resolved.level, `creating role ${input.name}`);
        const row = await q.insertRole({ name: input.name, description: input.description, level: input.level, mfaRequired: input.mfa_required });
        await q.replaceRolePermissions(row.id, resolved.permissionIds);
        await q.replaceRoleParents(row.id, resolved.parentIds);
        const after = await roleLinks(q, row);
        return { result: after, events: [event(actor, 'role.created', { type: 'role', id: row.id }, { before: null, after })] };
      });
    },
    async updateRole(id: string, input: RoleInput, actor: Actor, options: { dryRun?: boolean } = {}) {
      const apply = async (q: RbacQueries, tx: DbOrTx) => {
        await lockGraph(tx);
        const existing = isUuid(id) ? await q.findRoleById(id) : undefined;
        if (!existing) throw notFound('role');
        if (existing.builtin && input.name !== existing.name) throw new AppError('conflict', `${existing.name} is built in: it cannot be renamed`, 409);
        await assertManagesRole(q, actor, existing, 'changing');
        if (input.name !== existing.name && (await q.findRoleByName(input.name))) throw new AppError('conflict', `a role named ${input.name} already exists`, 409);
        const resolved = await resolveRoleInput(q, input, id);
        assertConfers(actor, resolved.effective, resolved.level, `changing role ${existing.name}`);
        const before = await roleLinks(q, existing);
        if (existing.builtin && existing.name === ADMIN_ROLE && !before.permissions.every((p) => input.permissions.includes(p))) {
          throw new AppError('conflict', `${ADMIN_ROLE} is built in: it keeps ${SUPERUSER}`, 409);
        }
        const row = await q.updateRole(id, { name: input.name, description: input.description, level: input.level, mfaRequired: input.mfa_required });
        if (!row) throw notFound('role');
        await q.replaceRolePermissions(id, resolved.permissionIds);
        await q.replaceRoleParents(id, resolved.parentIds);
        const after = await roleLinks(q, row);
        return { result: after, events: [event(actor, 'role.updated', { type: 'role', id }, { before, after })] };
      };
      if (options.dryRun) {
        if (!isUuid(id) || !(await queries.findRoleById(id))) throw notFound('role');
        return dryRun(rolesOrUsersAffectedByRole(id), apply);
      }
      return write(apply);
    },
    async deleteRole(id: string, actor: Actor) {
      return write(async (q, tx) => {
        await lockGraph(tx);
        const existing = isUuid(id) ? await q.findRoleById(id) : undefined;
        if (!existing) throw notFound('role');
        if (existing.builtin) throw new AppError('conflict', `${existing.name} is built in and cannot be deleted`, 409);
        await assertManagesRole(q, actor, existing, 'deleting');
        const before = await roleLinks(q, existing);
        const holders = await q.countRoleHolders(id);
        await q.deleteRole(id);
        return { result: undefined, events: [event(actor, 'role.deleted', { type: 'role', id }, { before, after: null, removed: holders })] };
      });
    },

    // ---- assignments
    async listUserRoles(userId: string) {
      if (!isUuid(userId) || !(await queries.userExists(userId))) throw notFound('user');
      const rows = await queries.listUserRoles(userId);
      const now = Date.now();
      return {
        items: rows.map((r) => ({
          role_id: r.roleId,
          role: r.name,
          expires_at: iso(r.expiresAt),
          active: !r.expiresAt || r.expiresAt.getTime() > now,
          created_at: iso(r.createdAt) as string,
        })),
        next_cursor: null,
      };
    },
    async assignRole(userId: string, input: { role: string; expires_at?: string | undefined }, actor: Actor, options: { dryRun?: boolean } = {}) {
      const apply = async (q: RbacQueries) => {
        if (!isUuid(userId) || !(await q.userExists(userId))) throw notFound('user');
        const role = await q.findRoleByName(input.role);
        if (!role) throw new AppError('invalid_request', `role: unknown role ${input.role}`);
        const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
        if (expiresAt && expiresAt.getTime() <= Date.now()) throw new AppError('invalid_request', 'expires_at: must be in the future');
        await assertManagesRole(q, actor, role, 'assigning');
        const before = await q.findUserRole(userId, role.id);
        await q.upsertUserRole(userId, role.id, expiresAt);
        const after = { role_id: role.id, role: role.name, expires_at: iso(expiresAt) };
        return {
          result: after,
          events: [
            event(actor, 'role.assigned', { type: 'user', id: userId }, { before: before ? { role_id: role.id, role: role.name, expires_at: iso(before.expiresAt) } : null, after }),
          ],
        };
      };
      if (options.dryRun) return dryRun(async () => (isUuid(userId) ? [userId] : []), apply);
      return write(apply);
    },
    async unassignRole(userId: string, roleId: string, actor: Actor, options: { dryRun?: boolean } = {}) {
      const apply = async (q: RbacQueries) => {
        if (!isUuid(userId) || !(await q.userExists(userId))) throw notFound('user');
        const role = isUuid(roleId) ? await q.findRoleById(roleId) : undefined;
        const existing = role ? await q.findUserRole(userId, role.id) : undefined;
        if (!role || !existing) throw notFound('assignment');
        await assertManagesRole(q, actor, role, 'unassigning');
        await q.deleteUserRole(userId, role.id);
        return {
          result: undefined,
          events: [event(actor, 'role.unassigned', { type: 'user', id: userId }, { before: { role_id: role.id, role: role.name, expires_at: iso(existing.expiresAt) }, after: null })],
        };
      };
      if (options.dryRun) return dryRun(async () => (isUuid(userId) ? [userId] : []), apply);
      return write(apply);
    },
    async userPermissions(userId: string) {
      if (!isUuid(userId) || !(await queries.userExists(userId))) throw notFound('user');
      const effective = (await resolveSubjects(db, 'user', [userId])).get(userId);
      return effectiveView(effective);
    },

    // ---- grants
    async listGrants(args: {
      limit: number;
      cursor?: string | undefined;
      user_id?: string | undefined;
      role?: string | undefined;
      permission?: string | undefined;
      object_type?: string | undefined;
      object_id?: string | undefined;
    }) {
      const empty = { items: [], next_cursor: null };
      if (args.user_id && !isUuid(args.user_id)) return empty;
      const role = args.role ? await queries.findRoleByName(args.role) : undefined;
      if (args.role && !role) return empty;
      const [permission] = args.permission ? await queries.findPermissionsByCodenames([args.permission]) : [];
      if (args.permission && !permission) return empty;
      const rows = await queries.listGrants({
        limit: args.limit,
        after: decodeCursor(args.cursor),
        userId: args.user_id,
        roleId: role?.id,
        permissionId: permission?.id,
        objectType: args.object_type,
        objectId: args.object_id,
      });
      const p = page(rows, args.limit, (r) => ({ key: r.createdAt.toISOString(), id: r.id }));
      return { items: p.rows.map(toGrantView), next_cursor: p.next_cursor };
    },
    async createGrant(
      input: { user_id?: string | undefined; role?: string | undefined; permission: string; object: { type: string; id: string } },
      actor: Actor,
      options: { dryRun?: boolean } = {},
    ) {
      const apply = async (q: RbacQueries) => {
        let userId: string | null = null;
        let roleId: string | null = null;
        if (input.user_id) {
          if (!isUuid(input.user_id) || !(await q.userExists(input.user_id))) throw new AppError('invalid_request', 'user_id: unknown user');
          userId = input.user_id;
        } else {
          const role = await q.findRoleByName(input.role ?? '');
          if (!role) throw new AppError('invalid_request', `role: unknown role ${input.role ?? ''}`);
          roleId = role.id;
        }
        const [permission] = await q.findPermissionsByCodenames([input.permission]);
        if (!permission) throw new AppError('invalid_request', `permission: unknown permission ${input.permission}`);
        assertConfers(actor, [permission.codename], 0, `granting ${permission.codename}`);
        const values = { userId, roleId, permissionId: permission.id, objectType: input.object.type, objectId: input.object.id };
        if (await q.findGrant(values)) throw new AppError('conflict', 'this grant already exists', 409);
        const row = await q.insertGrant(values).catch((err: unknown) => {
          throw isUniqueViolation(err) ? new AppError('conflict', 'this grant already exists', 409) : err;
        });
        const after = (await (async () => {
          const g = await q.findGrantById(row.id);
          return g ? toGrantView(g) : undefined;
        })()) as ReturnType<typeof toGrantView>;
        return { result: after, events: [event(actor, 'grant.created', { type: 'grant', id: row.id }, { before: null, after })] };
      };
      if (options.dryRun) {
        return dryRun(async (q) => {
          if (input.user_id) return isUuid(input.user_id) ? [input.user_id] : [];
          const role = await q.findRoleByName(input.role ?? '');
          return role ? rolesOrUsersAffectedByRole(role.id)(q) : [];
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
        return { result: undefined, events: [event(actor, 'grant.deleted', { type: 'grant', id }, { before: toGrantView(existing), after: null })] };
      };
      if (options.dryRun) {
        return dryRun(async (q) => {
          const g = isUuid(id) ? await q.findGrantById(id) : undefined;
          if (!g) return [];
          return g.userId ? [g.userId] : g.roleId ? rolesOrUsersAffectedByRole(g.roleId)(q) : [];
        }, apply);
      }
      return write(apply);
    },
    grantView: (id: string) => grantView(queries, id),

    // ---- decisions
    effectiveOf: (subject: SubjectRef) => cache.get(subject),

    /**
     * Answers a check for `caller`. Asking about another subject needs auth.check (403 otherwise); an unknown
     * subject is simply not allowed anything.
     */
    async check(caller: Effective, input: CheckInput & { subject?: string | undefined }): Promise<Decision> {
      const self = input.subject === undefined || (caller.subject.kind === 'user' && caller.subject.id === input.subject);
      if (!self && !holds(caller, 'auth.check')) throw forbidden('asking about another subject requires auth.check', 'auth.check');
      const subject = self ? caller : await cache.get({ kind: 'user', id: input.subject as string });
      return decide(subject, input);
    },
  };
  return service;
}
export type RbacService = ReturnType<typeof createRbacService>;

export function effectiveView(effective: Effective | undefined) {
  if (!effective) return { permissions: [], roles: [], level: 0, mfa_required: false, grants: [] };
  return {
    permissions: [...effective.permissions.keys()].sort(),
    roles: [...effective.roles.values()].map((r) => ({ id: r.id, name: r.name, direct: r.direct, level: r.level })).sort((a, b) => a.name.localeCompare(b.name)),
    level: effective.level,
    mfa_required: effective.mfaRequired,
    grants: [...effective.grants.keys()].map((k) => {
      const [permission, type, id] = k.split('\u0000') as [string, string, string];
      return { permission, object: { type, id } };
    }),
  };
}

function event(actor: Actor, type: AuditEvent['type'], subject: { type: string; id: string }, details: Record<string, unknown>): AuditEvent {
  return { type, outcome: 'success', actor: actor.audit, subject, context: actor.context, details };
}
