/**
 * Data access for permissions, roles, inheritance, assignments and object grants. Graph walks are recursive
 * CTEs with UNION (not UNION ALL): a cycle in the data cannot make them run forever.
 */
import { and, asc, eq, gt, ilike, inArray, isNull, or, sql, type SQL } from 'drizzle-orm';
import { selectRows, type DbOrTx } from '../db/client.js';
import { createRbacImpactQueries } from './rbac-impact.js';
import { clientRoles, clients, objectGrants, permissions, roleParents, rolePermissions, roles, userRoles, users } from '../db/schema/index.js';

export type PermissionRow = typeof permissions.$inferSelect;
export type RoleRow = typeof roles.$inferSelect;
export type GrantRow = typeof objectGrants.$inferSelect;
/** A grant with the names it refers to (role name, permission codename), as every grant listing shows it. */
export interface GrantListing {
  id: string;
  userId: string | null;
  roleId: string | null;
  roleName: string | null;
  codename: string;
  objectType: string;
  objectId: string;
  createdAt: Date;
}

/** LIKE metacharacters in a search term match themselves. */
export const likeEscape = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);
const uuidList = (ids: string[]) => `{${ids.join(',')}}`;
/** The advisory lock key of the role graph ("krbac"). */
const ROLE_GRAPH_LOCK = 0x6b72626163;

export interface PageArgs {
  limit: number;
  after?: { key: string; id: string } | undefined;
}

const grantColumns = {
  id: objectGrants.id,
  userId: objectGrants.userId,
  roleId: objectGrants.roleId,
  roleName: roles.name,
  codename: permissions.codename,
  objectType: objectGrants.objectType,
  objectId: objectGrants.objectId,
  createdAt: objectGrants.createdAt,
};
/** A listing's columns and its `cursorKey`: created_at with the database's microseconds (RFC 3339, UTC). */
const grantPageColumns = { ...grantColumns, cursorKey: sql<string>`to_char(${objectGrants.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` };

export function createRbacQueries(db: DbOrTx) {
  /** Grants with the names they refer to (role name, permission codename), as every grant listing shows them. */
  const selectGrants = () =>
    db
      .select(grantColumns)
      .from(objectGrants)
      .innerJoin(permissions, eq(permissions.id, objectGrants.permissionId))
      .leftJoin(roles, eq(roles.id, objectGrants.roleId));

  return {
    ...createRbacImpactQueries(db),

    // ---- permissions
    async listPermissions(args: PageArgs & { codename?: string | undefined; name?: string | undefined }): Promise<PermissionRow[]> {
      const conditions: SQL[] = [];
      if (args.codename) conditions.push(ilike(permissions.codename, `%${likeEscape(args.codename)}%`));
      if (args.name) conditions.push(ilike(permissions.name, `%${likeEscape(args.name)}%`));
      if (args.after) {
        conditions.push(or(gt(permissions.codename, args.after.key), and(eq(permissions.codename, args.after.key), gt(permissions.id, args.after.id))) as SQL);
      }
      return db
        .select()
        .from(permissions)
        .where(and(...conditions))
        .orderBy(asc(permissions.codename), asc(permissions.id))
        .limit(args.limit + 1);
    },
    async findPermissionById(id: string): Promise<PermissionRow | undefined> {
      const [row] = await db.select().from(permissions).where(eq(permissions.id, id)).limit(1);
      return row;
    },
    async findPermissionsByCodenames(codenames: string[]): Promise<PermissionRow[]> {
      if (!codenames.length) return [];
      return db.select().from(permissions).where(inArray(permissions.codename, codenames));
    },
    async findPermissionConflict(name: string, codename: string, exceptId?: string): Promise<PermissionRow | undefined> {
      const [row] = await db
        .select()
        .from(permissions)
        .where(and(or(eq(permissions.name, name), eq(permissions.codename, codename)), exceptId ? sql`${permissions.id} <> ${exceptId}` : undefined))
        .limit(1);
      return row;
    },
    async insertPermission(values: typeof permissions.$inferInsert): Promise<PermissionRow> {
      const [row] = await db.insert(permissions).values(values).returning();
      if (!row) throw new Error('insert returned no row');
      return row;
    },
    async updatePermission(id: string, values: Partial<typeof permissions.$inferInsert>): Promise<PermissionRow | undefined> {
      const [row] = await db.update(permissions).set({ ...values, updatedAt: sql`now()` }).where(eq(permissions.id, id)).returning();
      return row;
    },
    async deletePermission(id: string): Promise<void> {
      await db.delete(permissions).where(eq(permissions.id, id));
    },
    /** A built-in permission, unless one with its name or codename exists (safe on concurrent replicas). */
    async insertBuiltinPermission(codename: string, description: string): Promise<void> {
      await db.insert(permissions).values({ name: codename, codename, description, builtin: true }).onConflictDoNothing();
    },

    // ---- roles
    async listRoles(args: PageArgs & { name?: string | undefined }): Promise<RoleRow[]> {
      const conditions: SQL[] = [];
      if (args.name) conditions.push(ilike(roles.name, `%${likeEscape(args.name)}%`));
      if (args.after) conditions.push(or(gt(roles.name, args.after.key), and(eq(roles.name, args.after.key), gt(roles.id, args.after.id))) as SQL);
      return db
        .select()
        .from(roles)
        .where(and(...conditions))
        .orderBy(asc(roles.name), asc(roles.id))
        .limit(args.limit + 1);
    },
    async findRoleById(id: string): Promise<RoleRow | undefined> {
      const [row] = await db.select().from(roles).where(eq(roles.id, id)).limit(1);
      return row;
    },
    async findRoleByName(name: string): Promise<RoleRow | undefined> {
      const [row] = await db.select().from(roles).where(eq(roles.name, name)).limit(1);
      return row;
    },
    async findRolesByNames(names: string[]): Promise<RoleRow[]> {
      if (!names.length) return [];
      return db.select().from(roles).where(inArray(roles.name, names));
    },
    async insertRole(values: typeof roles.$inferInsert): Promise<RoleRow> {
      const [row] = await db.insert(roles).values(values).returning();
      if (!row) throw new Error('insert returned no row');
      return row;
    },
    async updateRole(id: string, values: Partial<typeof roles.$inferInsert>): Promise<RoleRow | undefined> {
      const [row] = await db.update(roles).set({ ...values, updatedAt: sql`now()` }).where(eq(roles.id, id)).returning();
      return row;
    },
    async deleteRole(id: string): Promise<void> {
      await db.delete(roles).where(eq(roles.id, id));
    },
    /** A built-in role, unless one with its name exists (safe on concurrent replicas). */
    /** Creates a built-in role unless it exists: `mfaRequired` applies only to a role created now (a new installation). */
    async insertBuiltinRole(name: string, description: string, options: { mfaRequired?: boolean } = {}): Promise<void> {
      await db.insert(roles).values({ name, description, builtin: true, mfaRequired: options.mfaRequired ?? false }).onConflictDoNothing();
    },
    /** Serializes changes to the role graph until the transaction ends, so two concurrent edits cannot close a cycle between them. */
    async lockRoleGraph(): Promise<void> {
      await db.execute(sql`select pg_advisory_xact_lock(${ROLE_GRAPH_LOCK})`);
    },
    /** Direct permission codenames and parent names of each role. */
    async findRoleLinks(roleIds: string[]): Promise<Map<string, { permissions: string[]; parents: string[] }>> {
      const out = new Map(roleIds.map((id) => [id, { permissions: [] as string[], parents: [] as string[] }]));
      if (!roleIds.length) return out;
      const perms = await db
        .select({ roleId: rolePermissions.roleId, codename: permissions.codename })
        .from(rolePermissions)
        .innerJoin(permissions, eq(permissions.id, rolePermissions.permissionId))
        .where(inArray(rolePermissions.roleId, roleIds))
        .orderBy(asc(permissions.codename));
      for (const p of perms) out.get(p.roleId)?.permissions.push(p.codename);
      const parents = await db
        .select({ roleId: roleParents.roleId, name: roles.name })
        .from(roleParents)
        .innerJoin(roles, eq(roles.id, roleParents.parentId))
        .where(inArray(roleParents.roleId, roleIds))
        .orderBy(asc(roles.name));
      for (const p of parents) out.get(p.roleId)?.parents.push(p.name);
      return out;
    },
    async replaceRolePermissions(roleId: string, permissionIds: string[]): Promise<void> {
      await db.delete(rolePermissions).where(eq(rolePermissions.roleId, roleId));
      if (permissionIds.length) await db.insert(rolePermissions).values(permissionIds.map((permissionId) => ({ roleId, permissionId })));
    },
    async replaceRoleParents(roleId: string, parentIds: string[]): Promise<void> {
      await db.delete(roleParents).where(eq(roleParents.roleId, roleId));
      if (parentIds.length) await db.insert(roleParents).values(parentIds.map((parentId) => ({ roleId, parentId })));
    },
    async addRolePermission(roleId: string, permissionId: string): Promise<void> {
      await db.insert(rolePermissions).values({ roleId, permissionId }).onConflictDoNothing();
    },
    /**
     * The closure of a set of roles (the roles and all their ancestors): ids, permission codenames, highest level.
     * One recursive query.
     */
    async findRoleClosure(roleIds: string[]): Promise<{ roleIds: Set<string>; permissions: Set<string>; level: number }> {
      const out = { roleIds: new Set<string>(), permissions: new Set<string>(), level: 0 };
      if (!roleIds.length) return out;
      const rows = await selectRows<{ kind: string; v: string; level: number | null }>(
        db,
        sql`with recursive up(id) as (
              select unnest(${uuidList(roleIds)}::uuid[])
              union
              select rp.parent_id from up join role_parents rp on rp.role_id = up.id)
            select 'role' as kind, r.id::text as v, r.level from up join roles r on r.id = up.id
            union all
            select 'perm', p.codename, null from up join role_permissions rp on rp.role_id = up.id join permissions p on p.id = rp.permission_id`,
      );
      for (const r of rows) {
        if (r.kind === 'role') {
          out.roleIds.add(r.v);
          out.level = Math.max(out.level, Number(r.level ?? 0));
        } else out.permissions.add(r.v);
      }
      return out;
    },
    /** A role and every role that inherits from it, directly or not. */
    async findRoleDescendants(roleId: string): Promise<string[]> {
      const rows = await selectRows<{ id: string }>(
        db,
        sql`with recursive down(id) as (
              select ${roleId}::uuid
              union
              select rp.role_id from down join role_parents rp on rp.parent_id = down.id)
            select id::text as id from down`,
      );
      return rows.map((r) => r.id);
    },
    /** Users holding any of these roles through an assignment unexpired at `at`. */
    async findUsersHoldingRoles(roleIds: string[], at: Date): Promise<string[]> {
      if (!roleIds.length) return [];
      const rows = await db
        .selectDistinct({ userId: userRoles.userId })
        .from(userRoles)
        .where(and(inArray(userRoles.roleId, roleIds), or(isNull(userRoles.expiresAt), gt(userRoles.expiresAt, at))));
      return rows.map((r) => r.userId);
    },
    async countRoleHolders(roleId: string): Promise<{ users: number; clients: number; children: number }> {
      const [u] = await db.select({ n: sql<number>`count(*)::int` }).from(userRoles).where(eq(userRoles.roleId, roleId));
      const [c] = await db.select({ n: sql<number>`count(*)::int` }).from(clientRoles).where(eq(clientRoles.roleId, roleId));
      const [ch] = await db.select({ n: sql<number>`count(*)::int` }).from(roleParents).where(eq(roleParents.parentId, roleId));
      return { users: u?.n ?? 0, clients: c?.n ?? 0, children: ch?.n ?? 0 };
    },

    // ---- assignments
    async listUserRoles(userId: string) {
      return db
        .select({ roleId: userRoles.roleId, name: roles.name, expiresAt: userRoles.expiresAt, createdAt: userRoles.createdAt })
        .from(userRoles)
        .innerJoin(roles, eq(roles.id, userRoles.roleId))
        .where(eq(userRoles.userId, userId))
        .orderBy(asc(roles.name));
    },
    async findUserRole(userId: string, roleId: string) {
      const [row] = await db.select().from(userRoles).where(and(eq(userRoles.userId, userId), eq(userRoles.roleId, roleId))).limit(1);
      return row;
    },
    async upsertUserRole(userId: string, roleId: string, expiresAt: Date | null): Promise<void> {
      await db
        .insert(userRoles)
        .values({ userId, roleId, expiresAt })
        .onConflictDoUpdate({ target: [userRoles.userId, userRoles.roleId], set: { expiresAt } });
    },
    async deleteUserRole(userId: string, roleId: string): Promise<void> {
      await db.delete(userRoles).where(and(eq(userRoles.userId, userId), eq(userRoles.roleId, roleId)));
    },
    async listClientRoleNames(clientId: string): Promise<string[]> {
      const rows = await db
        .select({ name: roles.name })
        .from(clientRoles)
        .innerJoin(roles, eq(roles.id, clientRoles.roleId))
        .where(eq(clientRoles.clientId, clientId));
      return rows.map((r) => r.name);
    },
    /** A service-account client's roles, by name. */
    async listClientRoles(clientId: string): Promise<Array<{ roleId: string; name: string; createdAt: Date }>> {
      return db
        .select({ roleId: roles.id, name: roles.name, createdAt: clientRoles.createdAt })
        .from(clientRoles)
        .innerJoin(roles, eq(roles.id, clientRoles.roleId))
        .where(eq(clientRoles.clientId, clientId))
        .orderBy(roles.name);
    },
    async deleteClientRole(clientId: string, roleId: string): Promise<boolean> {
      const rows = await db
        .delete(clientRoles)
        .where(and(eq(clientRoles.clientId, clientId), eq(clientRoles.roleId, roleId)))
        .returning({ roleId: clientRoles.roleId });
      return rows.length > 0;
    },
    async insertClientRole(clientId: string, roleId: string): Promise<void> {
      await db.insert(clientRoles).values({ clientId, roleId }).onConflictDoNothing();
    },
    async clientExists(clientId: string): Promise<boolean> {
      const [row] = await db.select({ id: clients.clientId }).from(clients).where(eq(clients.clientId, clientId)).limit(1);
      return row !== undefined;
    },

    // ---- object grants
    /**
     * Oldest first, after the cursor's (created_at, id); each row carries its `cursorKey`, created_at with the
     * database's microseconds (a JavaScript Date would cut them and the next page would repeat or skip rows).
     */
    async listGrants(
      args: PageArgs & { userId?: string | undefined; roleId?: string | undefined; permissionId?: string | undefined; objectType?: string | undefined; objectId?: string | undefined },
    ): Promise<Array<GrantListing & { cursorKey: string }>> {
      const conditions: SQL[] = [];
      if (args.userId) conditions.push(eq(objectGrants.userId, args.userId));
      if (args.roleId) conditions.push(eq(objectGrants.roleId, args.roleId));
      if (args.permissionId) conditions.push(eq(objectGrants.permissionId, args.permissionId));
      if (args.objectType) conditions.push(eq(objectGrants.objectType, args.objectType));
      if (args.objectId) conditions.push(eq(objectGrants.objectId, args.objectId));
      if (args.after) conditions.push(sql`(${objectGrants.createdAt}, ${objectGrants.id}) > (${args.after.key}::timestamptz, ${args.after.id}::uuid)`);
      return db
        .select(grantPageColumns)
        .from(objectGrants)
        .innerJoin(permissions, eq(permissions.id, objectGrants.permissionId))
        .leftJoin(roles, eq(roles.id, objectGrants.roleId))
        .where(and(...conditions))
        .orderBy(asc(objectGrants.createdAt), asc(objectGrants.id))
        .limit(args.limit + 1);
    },
    async findGrantById(id: string): Promise<GrantListing | undefined> {
      const [row] = await this.listGrantsById([id]);
      return row;
    },
    async listGrantsById(ids: string[]): Promise<GrantListing[]> {
      if (!ids.length) return [];
      return selectGrants().where(inArray(objectGrants.id, ids));
    },
    async findGrant(values: { userId: string | null; roleId: string | null; permissionId: string; objectType: string; objectId: string }) {
      const [row] = await db
        .select({ id: objectGrants.id })
        .from(objectGrants)
        .where(
          and(
            values.userId ? eq(objectGrants.userId, values.userId) : isNull(objectGrants.userId),
            values.roleId ? eq(objectGrants.roleId, values.roleId) : isNull(objectGrants.roleId),
            eq(objectGrants.permissionId, values.permissionId),
            eq(objectGrants.objectType, values.objectType),
            eq(objectGrants.objectId, values.objectId),
          ),
        )
        .limit(1);
      return row;
    },
    async insertGrant(values: typeof objectGrants.$inferInsert): Promise<GrantRow> {
      const [row] = await db.insert(objectGrants).values(values).returning();
      if (!row) throw new Error('insert returned no row');
      return row;
    },
    async deleteGrant(id: string): Promise<void> {
      await db.delete(objectGrants).where(eq(objectGrants.id, id));
    },
    async userExists(id: string): Promise<boolean> {
      const [row] = await db.select({ id: users.id }).from(users).where(eq(users.id, id)).limit(1);
      return row !== undefined;
    },
  };
}
export type RbacQueries = ReturnType<typeof createRbacQueries>;
