/**
 * What a change to the authorization model reaches, for the confirmations shown before it is made: holders
 * of roles, what depends on a permission, the users a removal would touch, users named in a bulk
 * assignment. Part of the rbac queries (createRbacQueries spreads them), so a dry run sees them in its
 * transaction. Graph walks are recursive CTEs with UNION: a cycle in the data cannot make them run forever.
 */
import { and, asc, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm';
import { selectRows, type DbOrTx } from '../db/client.js';
import { clientRoles, objectGrants, roleParents, rolePermissions, roles, userRoles, users } from '../db/schema/index.js';

export function createRbacImpactQueries(db: DbOrTx) {
  return {
    /** Holders of each role (users with an assignment unexpired at `at`), for role listings. */
    async countUserHoldersByRoles(roleIds: string[], at: Date): Promise<Map<string, number>> {
      const out = new Map(roleIds.map((id) => [id, 0]));
      if (!roleIds.length) return out;
      const rows = await db
        .select({ roleId: userRoles.roleId, n: sql<number>`count(*)::int` })
        .from(userRoles)
        .where(and(inArray(userRoles.roleId, roleIds), or(isNull(userRoles.expiresAt), gt(userRoles.expiresAt, at))))
        .groupBy(userRoles.roleId);
      for (const r of rows) out.set(r.roleId, Number(r.n));
      return out;
    },
    /** Who holds a role directly (at most `limit` users, by email; expired assignments included), its clients and its child roles: what deleting it takes away. */
    async findRoleHolders(roleId: string, limit: number) {
      const holders = await db
        .select({ userId: users.id, email: users.email, expiresAt: userRoles.expiresAt })
        .from(userRoles)
        .innerJoin(users, eq(users.id, userRoles.userId))
        .where(eq(userRoles.roleId, roleId))
        .orderBy(asc(users.email))
        .limit(limit);
      const clientIds = await db.select({ clientId: clientRoles.clientId }).from(clientRoles).where(eq(clientRoles.roleId, roleId)).orderBy(asc(clientRoles.clientId)).limit(limit);
      const children = await db
        .select({ id: roles.id, name: roles.name })
        .from(roleParents)
        .innerJoin(roles, eq(roles.id, roleParents.roleId))
        .where(eq(roleParents.parentId, roleId))
        .orderBy(asc(roles.name));
      return { users: holders, clients: clientIds.map((c) => c.clientId), children };
    },
    /** What uses a permission: the roles holding it directly and the object grants of it. */
    async findPermissionDependents(permissionId: string) {
      const holding = await db
        .select({ id: roles.id, name: roles.name })
        .from(rolePermissions)
        .innerJoin(roles, eq(roles.id, rolePermissions.roleId))
        .where(eq(rolePermissions.permissionId, permissionId))
        .orderBy(asc(roles.name));
      const [g] = await db.select({ n: sql<number>`count(*)::int` }).from(objectGrants).where(eq(objectGrants.permissionId, permissionId));
      return { roles: holding, grants: Number(g?.n ?? 0) };
    },
    /** Users a permission's removal would touch at `at`: holders (direct or inherited) of roles holding it, and users with a grant of it (directly or through a role). */
    async findUsersAffectedByPermission(permissionId: string, at: Date): Promise<string[]> {
      const rows = await selectRows<{ id: string }>(
        db,
        sql`with recursive down(id) as (
              select role_id from role_permissions where permission_id = ${permissionId}::uuid
              union
              select role_id from object_grants where permission_id = ${permissionId}::uuid and role_id is not null
              union
              select rp.role_id from down join role_parents rp on rp.parent_id = down.id)
            select distinct ur.user_id::text as id from user_roles ur join down on down.id = ur.role_id
              where ur.expires_at is null or ur.expires_at > ${at.toISOString()}::timestamptz
            union
            select user_id::text from object_grants where permission_id = ${permissionId}::uuid and user_id is not null`,
      );
      return rows.map((r) => r.id);
    },
    /** Users by normalized email (as stored), for bulk assignment. */
    async findUsersByEmails(emails: string[]): Promise<Array<{ id: string; email: string }>> {
      if (!emails.length) return [];
      return db.select({ id: users.id, email: users.email }).from(users).where(inArray(sql`lower(${users.email})`, emails));
    },
    /** The emails of users by id (for listings that name people). */
    async findUserEmails(ids: string[]): Promise<Map<string, string>> {
      if (!ids.length) return new Map();
      const rows = await db.select({ id: users.id, email: users.email }).from(users).where(inArray(users.id, ids));
      return new Map(rows.map((r) => [r.id, r.email]));
    },
  };
}
