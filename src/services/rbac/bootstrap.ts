/**
 * The authorization part of the bootstrap file: permissions, roles (parents, level, mfa_required), role
 * assignments of users and clients, and object grants. Idempotent like the rest of the file: applying it twice
 * changes nothing; it never deletes what it does not declare, except that a declared role's permission and
 * parent lists are what the file says (the built-in admin role only ever gains permissions: it keeps
 * auth.superuser). Assignments and grants are only added. References name their entry in errors.
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { DbOrTx } from '../../db/client.js';
import { createRbacQueries } from '../../queries/rbac.js';
import { createUserQueries } from '../../queries/users.js';
import type { AuditEvent } from '../audit.js';
import { normalizeEmail } from '../users.js';
import { RBAC_CHANNEL } from './cache.js';
import { ADMIN_ROLE, codenameSchema, nameSchema, objectSchema, permissionView, roleView } from './service.js';

export const permissionEntrySchema = z
  .object({ codename: codenameSchema, name: nameSchema.optional(), description: z.string().max(1000).default('') })
  .strict();

export const roleEntrySchema = z
  .object({
    name: nameSchema,
    description: z.string().max(1000).optional(),
    permissions: z.array(codenameSchema).max(1000).optional(),
    parents: z.array(nameSchema).max(100).optional(),
    level: z.number().int().min(0).max(1_000_000).optional(),
    mfa_required: z.boolean().optional(),
  })
  .strict();

export const grantEntrySchema = z
  .object({ user: z.string().max(254).optional(), role: nameSchema.optional(), permission: codenameSchema, object: objectSchema.strict() })
  .strict()
  .refine((g) => (g.user === undefined) !== (g.role === undefined), { message: 'give exactly one of user and role', path: ['user'] });

export type Change = 'created' | 'updated' | 'unchanged';

export interface RbacBootstrapInput {
  permissions: Array<z.output<typeof permissionEntrySchema>>;
  roles: Array<z.output<typeof roleEntrySchema>>;
  grants: Array<z.output<typeof grantEntrySchema>>;
  userRoles: Array<{ email: string; roles: string[] }>;
  clientRoles: Array<{ clientId: string; roles: string[] }>;
}

export interface RbacBootstrapSummary {
  permissions: Record<string, Change>;
  roles: Record<string, Change>;
  assignments: number;
  grants: number;
}

/** Thrown with entry-named problems; the caller turns it into a BootstrapError (and the transaction rolls back). */
export class BootstrapReferenceError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

const same = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

export async function applyRbacBootstrap(
  tx: DbOrTx,
  input: RbacBootstrapInput,
  actor: AuditEvent['actor'],
  source: string,
  events: AuditEvent[],
): Promise<RbacBootstrapSummary> {
  const q = createRbacQueries(tx);
  const users = createUserQueries(tx);
  const summary: RbacBootstrapSummary = { permissions: {}, roles: {}, assignments: 0, grants: 0 };
  const problems: string[] = [];
  const push = (type: AuditEvent['type'], subject: { type: string; id: string }, details: Record<string, unknown>) =>
    events.push({ type, outcome: 'success', actor, subject, details: { ...details, source } });

  // Permissions, by codename.
  for (const p of input.permissions) {
    const [existing] = await q.findPermissionsByCodenames([p.codename]);
    const name = p.name ?? p.codename;
    if (!existing) {
      const row = await q.insertPermission({ codename: p.codename, name, description: p.description });
      push('permission.created', { type: 'permission', id: row.id }, { before: null, after: permissionView(row) });
      summary.permissions[p.codename] = 'created';
    } else if ((existing.name !== name && !existing.builtin) || existing.description !== p.description) {
      const row = await q.updatePermission(existing.id, { name: existing.builtin ? existing.name : name, description: p.description });
      push('permission.updated', { type: 'permission', id: existing.id }, { before: permissionView(existing), after: row ? permissionView(row) : null });
      summary.permissions[p.codename] = 'updated';
    } else summary.permissions[p.codename] = 'unchanged';
  }

  // Roles: first the rows (so parents may be declared in any order), then their links.
  const ids = new Map<string, string>();
  for (const r of input.roles) {
    const existing = await q.findRoleByName(r.name);
    if (!existing) {
      const row = await q.insertRole({ name: r.name, description: r.description ?? '', level: r.level ?? 0, mfaRequired: r.mfa_required ?? false });
      ids.set(r.name, row.id);
      summary.roles[r.name] = 'created';
      continue;
    }
    ids.set(r.name, existing.id);
    const changes: Record<string, unknown> = {};
    if (r.description !== undefined && r.description !== existing.description) changes.description = r.description;
    if (r.level !== undefined && r.level !== existing.level) changes.level = r.level;
    if (r.mfa_required !== undefined && r.mfa_required !== existing.mfaRequired) changes.mfaRequired = r.mfa_required;
    summary.roles[r.name] = Object.keys(changes).length ? 'updated' : 'unchanged';
    if (Object.keys(changes).length) await q.updateRole(existing.id, changes);
  }
  for (const [i, r] of input.roles.entries()) {
    const id = ids.get(r.name) as string;
    const before = await q.findRoleLinks([id]).then((m) => m.get(id) ?? { permissions: [], parents: [] });
    if (r.permissions) {
      const perms = await q.findPermissionsByCodenames(r.permissions);
      for (const c of r.permissions) if (!perms.some((p) => p.codename === c)) problems.push(`roles[${i}] (${r.name}).permissions: unknown permission ${c}`);
      const wanted = r.name === ADMIN_ROLE ? [...new Set([...before.permissions, ...r.permissions])] : r.permissions;
      if (!same(wanted, before.permissions)) {
        const all = await q.findPermissionsByCodenames(wanted);
        await q.replaceRolePermissions(id, all.map((p) => p.id));
        if (summary.roles[r.name] === 'unchanged') summary.roles[r.name] = 'updated';
      }
    }
    if (r.parents) {
      const parents = await q.findRolesByNames(r.parents);
      for (const n of r.parents) if (!parents.some((p) => p.name === n)) problems.push(`roles[${i}] (${r.name}).parents: unknown role ${n}`);
      if (!same(r.parents, before.parents)) {
        await q.replaceRoleParents(id, parents.map((p) => p.id));
        if (summary.roles[r.name] === 'unchanged') summary.roles[r.name] = 'updated';
      }
    }
    if (summary.roles[r.name] !== 'unchanged') {
      const row = await q.findRoleById(id);
      const after = row ? roleView(row, (await q.findRoleLinks([id])).get(id) ?? { permissions: [], parents: [] }) : null;
      push(summary.roles[r.name] === 'created' ? 'role.created' : 'role.updated', { type: 'role', id }, {
        before: summary.roles[r.name] === 'created' ? null : before,
        after,
      });
    }
  }
  if (problems.length) throw new BootstrapReferenceError(problems);
  for (const [i, r] of input.roles.entries()) {
    const id = ids.get(r.name) as string;
    const links = await q.findRoleLinks([id]);
    const parentIds = (await q.findRolesByNames(links.get(id)?.parents ?? [])).map((p) => p.id);
    if ((await q.findRoleClosure(parentIds)).roleIds.has(id)) problems.push(`roles[${i}] (${r.name}).parents: would create a cycle`);
  }
  if (problems.length) throw new BootstrapReferenceError(problems);

  const roleId = async (name: string, where: string) => {
    const role = await q.findRoleByName(name);
    if (!role) problems.push(`${where}: unknown role ${name}`);
    return role;
  };

  for (const [i, u] of input.userRoles.entries()) {
    const user = await users.findUserByEmail(normalizeEmail(u.email));
    if (!user) continue;
    for (const name of u.roles) {
      const role = await roleId(name, `users[${i}] (${u.email}).roles`);
      if (!role || (await q.findUserRole(user.id, role.id))) continue;
      await q.upsertUserRole(user.id, role.id, null);
      push('role.assigned', { type: 'user', id: user.id }, { before: null, after: { role_id: role.id, role: role.name, expires_at: null } });
      summary.assignments++;
    }
  }
  for (const [i, c] of input.clientRoles.entries()) {
    const held = await q.listClientRoleNames(c.clientId);
    for (const name of c.roles) {
      const role = await roleId(name, `clients[${i}] (${c.clientId}).roles`);
      if (!role || held.includes(name)) continue;
      await q.insertClientRole(c.clientId, role.id);
      push('role.assigned', { type: 'client', id: c.clientId }, { before: null, after: { role_id: role.id, role: role.name } });
      summary.assignments++;
    }
  }

  for (const [i, g] of input.grants.entries()) {
    const where = `grants[${i}]`;
    let userId: string | null = null;
    let grantRoleId: string | null = null;
    if (g.user !== undefined) {
      const user = await users.findUserByEmail(normalizeEmail(g.user));
      if (!user) problems.push(`${where}.user: unknown user ${g.user}`);
      userId = user?.id ?? null;
    } else {
      grantRoleId = (await roleId(g.role as string, `${where}.role`))?.id ?? null;
    }
    const [permission] = await q.findPermissionsByCodenames([g.permission]);
    if (!permission) problems.push(`${where}.permission: unknown permission ${g.permission}`);
    if (!permission || (!userId && !grantRoleId)) continue;
    const values = { userId, roleId: grantRoleId, permissionId: permission.id, objectType: g.object.type, objectId: g.object.id };
    if (await q.findGrant(values)) continue;
    const row = await q.insertGrant(values);
    push('grant.created', { type: 'grant', id: row.id }, { before: null, after: { user: g.user ?? null, role: g.role ?? null, permission: g.permission, object: g.object } });
    summary.grants++;
  }
  if (problems.length) throw new BootstrapReferenceError(problems);
  await tx.execute(sql`select pg_notify(${RBAC_CHANNEL}, 'bootstrap')`);
  return summary;
}
