/**
 * The authorization part of the bootstrap file: permissions, roles (parents, level, mfa_required), role
 * assignments of users and clients, and object grants. Idempotent like the rest of the file: applying it twice
 * changes nothing; it never deletes what it does not declare, except that a declared role's permission and
 * parent lists are what the file says (the built-in admin role only ever gains permissions: it keeps
 * auth.superuser). Assignments and grants are only added. References name their entry in errors.
 *
 * Every change goes through the rbac service's write path (the same checks as the management API), as the
 * operator, inside the bootstrap's transaction; audit events are collected for the caller to record on commit.
 */
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import type { Clock } from '../../lib/clock.js';
import { createUserQueries } from '../../queries/users.js';
import type { AuditEvent, AuditService } from '../audit.js';
import { normalizeEmail } from '../users.js';
import { ADMIN_ROLE } from './builtins.js';
import type { DecisionCache } from './cache.js';
import { codenameSchema, nameSchema, objectSchema } from './names.js';
import type { RoleInput, RoleWithLinks } from './roles.js';
import { createRbacService, type RbacService } from './service.js';
import { systemActor } from './write-path.js';

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
type RoleEntry = z.output<typeof roleEntrySchema>;

export interface RbacBootstrapInput {
  permissions: Array<z.output<typeof permissionEntrySchema>>;
  roles: RoleEntry[];
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

export interface RbacBootstrapDeps {
  cache: DecisionCache;
  clock: Clock;
}

/** Thrown with entry-named problems; the caller turns it into a BootstrapError (and the transaction rolls back). */
export class BootstrapReferenceError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && new Set([...a, ...b]).size === a.length;

/**
 * Declared roles in an order where every declared parent comes before its children (so each role is written
 * once, complete); roles on a cycle of declared parents are left out and reported.
 */
function parentsFirst(entries: RoleEntry[], existing: Map<string, RoleWithLinks>): { order: RoleEntry[]; cyclic: RoleEntry[] } {
  const declared = new Map(entries.map((r) => [r.name, r]));
  const parentsOf = (r: RoleEntry) => (r.parents ?? existing.get(r.name)?.parents ?? []).filter((p) => declared.has(p));
  const order: RoleEntry[] = [];
  const placed = new Set<string>();
  let progress = true;
  while (progress) {
    progress = false;
    for (const r of entries) {
      if (placed.has(r.name) || !parentsOf(r).every((p) => placed.has(p))) continue;
      placed.add(r.name);
      order.push(r);
      progress = true;
    }
  }
  return { order, cyclic: entries.filter((r) => !placed.has(r.name)) };
}

/** What a declared role becomes: omitted keys keep what the role has (or the defaults for a new role). */
function desiredRole(r: RoleEntry, current: RoleWithLinks | undefined): Required<RoleInput> {
  const permissions = r.permissions === undefined ? (current?.permissions ?? []) : r.name === ADMIN_ROLE && current ? [...new Set([...current.permissions, ...r.permissions])] : r.permissions;
  return {
    name: r.name,
    description: r.description ?? current?.description ?? '',
    permissions,
    parents: r.parents ?? current?.parents ?? [],
    level: r.level ?? current?.level ?? 0,
    mfaRequired: r.mfa_required ?? current?.mfaRequired ?? false,
  };
}

function unchanged(want: Required<RoleInput>, have: RoleWithLinks): boolean {
  return (
    want.description === have.description &&
    want.level === have.level &&
    want.mfaRequired === have.mfaRequired &&
    sameSet(want.permissions, have.permissions) &&
    sameSet(want.parents, have.parents)
  );
}

export async function applyRbacBootstrap(
  tx: Db,
  input: RbacBootstrapInput,
  actor: AuditEvent['actor'],
  source: string,
  events: AuditEvent[],
  deps: RbacBootstrapDeps,
): Promise<RbacBootstrapSummary> {
  const collect: AuditService = { record: async (e) => void events.push({ ...e, details: { ...e.details, source } }), flush: async () => {} };
  const rbac: RbacService = createRbacService({ db: tx, audit: collect, cache: deps.cache, clock: deps.clock });
  const operator = systemActor(actor);
  const users = createUserQueries(tx);
  const summary: RbacBootstrapSummary = { permissions: {}, roles: {}, assignments: 0, grants: 0 };
  const problems: string[] = [];

  /**
   * Runs one write; a refusal (a bad reference, a conflict) becomes a problem named by its entry. `where` names
   * the entry (`roles[2] (c)`), and the refusal's own field follows it; `field` replaces that field.
   */
  async function attempt<T>(where: string, run: () => Promise<T>, field?: string): Promise<T | undefined> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      if (err.code === 'role_cycle') problems.push(`${where}.parents: would create a cycle`);
      else if (field) problems.push(`${where}.${field}: ${err.message.replace(/^[a-z_]+: /, '')}`);
      else problems.push(/^[a-z_]+: /.test(err.message) ? `${where}.${err.message}` : `${where}: ${err.message}`);
      return undefined;
    }
  }

  for (const [i, p] of input.permissions.entries()) {
    const where = `permissions[${i}] (${p.codename})`;
    const existing = await rbac.findPermission(p.codename);
    const name = p.name ?? p.codename;
    if (!existing) {
      if (await attempt(where, () => rbac.createPermission({ codename: p.codename, name, description: p.description }, operator))) summary.permissions[p.codename] = 'created';
    } else if ((existing.name !== name && !existing.builtin) || existing.description !== p.description) {
      const change = { codename: p.codename, name: existing.builtin ? existing.name : name, description: p.description };
      if (await attempt(where, () => rbac.updatePermission(existing.id, change, operator))) summary.permissions[p.codename] = 'updated';
    } else summary.permissions[p.codename] = 'unchanged';
  }

  const existing = new Map<string, RoleWithLinks>();
  for (const r of input.roles) {
    const role = await rbac.findRole(r.name);
    if (role) existing.set(r.name, role);
  }
  const index = new Map(input.roles.map((r, i) => [r, i]));
  const { order, cyclic } = parentsFirst(input.roles, existing);
  for (const r of cyclic) problems.push(`roles[${index.get(r)}] (${r.name}).parents: would create a cycle`);
  const failed = new Set(cyclic.map((r) => r.name));
  for (const r of order) {
    const where = `roles[${index.get(r)}] (${r.name})`;
    const current = existing.get(r.name);
    const want = desiredRole(r, current);
    // A role whose declared parent could not be written is left alone: its parent's problem is the one to fix.
    if (want.parents.some((p) => failed.has(p))) {
      failed.add(r.name);
      continue;
    }
    if (current && unchanged(want, current)) {
      summary.roles[r.name] = 'unchanged';
      continue;
    }
    const written = await attempt(where, () => (current ? rbac.updateRole(current.id, want, operator) : rbac.createRole(want, operator)));
    if (written) summary.roles[r.name] = current ? 'updated' : 'created';
    else failed.add(r.name);
  }
  if (problems.length) throw new BootstrapReferenceError(problems);

  for (const [i, u] of input.userRoles.entries()) {
    const user = await users.findUserByEmail(normalizeEmail(u.email));
    if (!user) continue;
    const held = new Set((await rbac.listUserRoles(user.id)).map((a) => a.role));
    for (const name of u.roles) {
      if (held.has(name)) continue;
      if (await attempt(`users[${i}] (${u.email})`, () => rbac.assignRole(user.id, { role: name }, operator), 'roles')) summary.assignments++;
    }
  }
  for (const [i, c] of input.clientRoles.entries()) {
    for (const name of c.roles) {
      if (await attempt(`clients[${i}] (${c.clientId})`, () => rbac.assignClientRole(c.clientId, name, operator), 'roles')) summary.assignments++;
    }
  }

  for (const [i, g] of input.grants.entries()) {
    const where = `grants[${i}]`;
    let userId: string | undefined;
    if (g.user !== undefined) {
      userId = (await users.findUserByEmail(normalizeEmail(g.user)))?.id;
      if (!userId) {
        problems.push(`${where}.user: unknown user ${g.user}`);
        continue;
      }
    }
    const grant = { userId, role: g.role, permission: g.permission, object: g.object };
    if (await attempt(where, () => rbac.createGrant(grant, operator, { ifAbsent: true }))) summary.grants++;
  }
  if (problems.length) throw new BootstrapReferenceError(problems);
  return summary;
}
