/**
 * Effective permissions of a subject (a user or a service-account client), resolved from the database in ONE
 * recursive query (queries/rbac-resolution.ts), and the decision rules applied to them. Pure functions apart
 * from `resolveSubjects`.
 *
 * Rules:
 * - a subject holds a role through an unexpired assignment, and every ancestor of it (role_parents);
 * - it holds every permission of every role it holds; its level is the highest level among them (0 with none);
 * - an object grant to the subject, or to any role it holds, allows that permission on that exact object;
 * - `auth.superuser` implies every `auth.*` permission (not product permissions: those are modelled explicitly);
 * - a disabled user holds nothing (what it would hold if enabled is resolved with `includeDisabled`, for
 *   the outrank rule: re-enabling it gives everything back).
 * The query's recursion is over a finite set and the walks here keep a visited set, so even a cycle that
 * slipped into the data can never make a check run forever.
 */
import type { DbOrTx } from '../../db/client.js';
import { findResolutionRows, type SubjectKind } from '../../queries/rbac-resolution.js';
import { isUuid } from '../../lib/uuid.js';

export type { SubjectKind };
export interface SubjectRef {
  kind: SubjectKind;
  id: string;
}

export interface HeldRole {
  id: string;
  name: string;
  level: number;
  mfaRequired: boolean;
  /** Held through a direct assignment. */
  direct: boolean;
  /** Roles (held) this one was reached from as a parent. */
  via: Set<string>;
}

export interface ObjectGrantRef {
  id: string;
  /** The role the grant was made to, or null for a grant to the subject itself. */
  roleId: string | null;
}

export interface Effective {
  subject: SubjectRef;
  /** Email or client_id, for explanations; undefined when the subject does not exist (or is disabled). */
  label: string | undefined;
  roles: Map<string, HeldRole>;
  /** codename → the held role that provides it through the shortest chain. */
  permissions: Map<string, string>;
  /** grantKey(codename, type, id) → the grant. */
  grants: Map<string, ObjectGrantRef>;
  level: number;
  mfaRequired: boolean;
  superuser: boolean;
  /** When the earliest expiring assignment stops counting (epoch ms); Infinity when none expires. */
  validUntil: number;
}

export const SUPERUSER = 'auth.superuser';
export const grantKey = (codename: string, type: string, id: string) => `${codename}\u0000${type}\u0000${id}`;

export interface ResolveOptions {
  /** The time assignments' expiry is judged at: the injected clock's now. */
  at: Date;
  /** Resolve disabled users as if enabled (for comparisons, never for decisions). */
  includeDisabled?: boolean | undefined;
}

function emptyEffective(subject: SubjectRef): Effective {
  return {
    subject,
    label: undefined,
    roles: new Map(),
    permissions: new Map(),
    grants: new Map(),
    level: 0,
    mfaRequired: false,
    superuser: false,
    validUntil: Number.POSITIVE_INFINITY,
  };
}

/** Breadth-first from the directly held roles: the depth of each held role, for shortest explanations. */
function depths(effective: Effective): Map<string, number> {
  const parentsOf = new Map<string, string[]>();
  for (const role of effective.roles.values()) {
    for (const child of role.via) parentsOf.set(child, [...(parentsOf.get(child) ?? []), role.id]);
  }
  const depth = new Map<string, number>();
  let frontier = [...effective.roles.values()].filter((r) => r.direct).map((r) => r.id);
  for (const id of frontier) depth.set(id, 0);
  for (let d = 1; frontier.length; d++) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const parent of parentsOf.get(id) ?? []) {
        if (!depth.has(parent)) {
          depth.set(parent, d);
          next.push(parent);
        }
      }
    }
    frontier = next;
  }
  return depth;
}

/** Resolves many subjects of one kind with one query. Unknown (or, unless included, disabled) subjects resolve to holding nothing. */
export async function resolveSubjects(db: DbOrTx, kind: SubjectKind, ids: string[], options: ResolveOptions): Promise<Map<string, Effective>> {
  const valid = [...new Set(ids)].filter((id) => (kind === 'user' ? isUuid(id) : /^[A-Za-z0-9._~-]{1,100}$/.test(id)));
  const out = new Map<string, Effective>(ids.map((id) => [id, emptyEffective({ kind, id })]));
  if (!valid.length) return out;
  const rows = await findResolutionRows(db, kind, valid, options);
  const rolePerms: Array<[Effective, string, string]> = [];
  for (const row of rows) {
    const eff = out.get(row.subject);
    if (!eff) continue;
    switch (row.kind) {
      case 'subject':
        eff.label = row.a ?? undefined;
        break;
      case 'role': {
        const id = row.a as string;
        const role = eff.roles.get(id) ?? { id, name: row.c as string, level: Number(row.n ?? 0), mfaRequired: row.f === true, direct: false, via: new Set<string>() };
        if (row.b) role.via.add(row.b);
        else role.direct = true;
        eff.roles.set(id, role);
        if (row.t) eff.validUntil = Math.min(eff.validUntil, new Date(row.t).getTime());
        eff.level = Math.max(eff.level, role.level);
        eff.mfaRequired ||= role.mfaRequired;
        break;
      }
      case 'perm':
        rolePerms.push([eff, row.c as string, row.a as string]);
        break;
      case 'grant':
        eff.grants.set(grantKey(row.c as string, row.d as string, row.e as string), { id: row.a as string, roleId: row.b });
        break;
    }
  }
  const depthCache = new Map<Effective, Map<string, number>>();
  for (const [eff, codename, roleId] of rolePerms) {
    let depth = depthCache.get(eff);
    if (!depth) depthCache.set(eff, (depth = depths(eff)));
    const current = eff.permissions.get(codename);
    if (current === undefined || (depth.get(roleId) ?? Infinity) < (depth.get(current) ?? Infinity)) eff.permissions.set(codename, roleId);
    if (codename === SUPERUSER) eff.superuser = true;
  }
  return out;
}

export async function resolveSubject(db: DbOrTx, subject: SubjectRef, options: ResolveOptions): Promise<Effective> {
  return (await resolveSubjects(db, subject.kind, [subject.id], options)).get(subject.id) ?? emptyEffective(subject);
}

/** Whether the subject holds a permission globally (auth.superuser implies every auth.* permission). */
export function holds(effective: Effective, codename: string): boolean {
  return effective.permissions.has(codename) || (effective.superuser && codename.startsWith('auth.'));
}

/**
 * Why `actor` does not outrank `target`, or undefined when it does. Outranking means holding everything the
 * target holds: every permission, every object grant (the same grant, or its permission globally), and a
 * level at least the target's. auth.superuser outranks everyone.
 */
export function outrankGap(actor: Effective, target: Effective): { required: string; reason: string } | undefined {
  if (actor.superuser) return undefined;
  for (const codename of target.permissions.keys()) {
    if (!holds(actor, codename)) return { required: codename, reason: `${codename}, which they hold and you do not` };
  }
  for (const key of target.grants.keys()) {
    const [codename = '', type, id] = key.split('\u0000');
    if (!holds(actor, codename) && !actor.grants.has(key)) return { required: codename, reason: `${codename} on ${type}:${id}, which they were granted and you were not` };
  }
  if (target.level > actor.level) return { required: SUPERUSER, reason: `level ${target.level}, above your level ${actor.level}` };
  return undefined;
}

/** The chain of role names from a directly held role up to `roleId` (shortest). */
export function roleChain(effective: Effective, roleId: string): string[] {
  const depth = depths(effective);
  const chain: string[] = [];
  let current = effective.roles.get(roleId);
  const seen = new Set<string>();
  while (current && !seen.has(current.id)) {
    seen.add(current.id);
    chain.unshift(current.name);
    if (current.direct) break;
    let best: HeldRole | undefined;
    for (const child of current.via) {
      const candidate = effective.roles.get(child);
      if (candidate && (!best || (depth.get(candidate.id) ?? Infinity) < (depth.get(best.id) ?? Infinity))) best = candidate;
    }
    current = best;
  }
  return chain;
}

export interface CheckInput {
  permission?: string | undefined;
  object?: { type: string; id: string } | undefined;
  min_level?: number | undefined;
  explain?: boolean | undefined;
}

export interface Decision {
  allowed: boolean;
  /** role | grant | superuser | missing_permission | level_too_low | unknown_subject */
  reason: string;
  explanation?: string;
  chain?: string[];
  grant?: { id: string; to: string; permission: string; object: { type: string; id: string } };
}

/** The decision rule (see the header). Pure and synchronous: the hot path of the check API. */
export function decide(effective: Effective, input: CheckInput): Decision {
  const who = effective.label ?? effective.subject.id;
  if (effective.label === undefined) {
    return input.explain
      ? { allowed: false, reason: 'unknown_subject', explanation: `${who} is not a known, enabled subject` }
      : { allowed: false, reason: 'unknown_subject' };
  }
  if (input.min_level !== undefined && effective.level < input.min_level) {
    return input.explain
      ? { allowed: false, reason: 'level_too_low', explanation: `${who} has level ${effective.level}, below the required ${input.min_level}` }
      : { allowed: false, reason: 'level_too_low' };
  }
  const permission = input.permission;
  if (permission === undefined) {
    return input.explain ? { allowed: true, reason: 'level', explanation: `${who} has level ${effective.level}` } : { allowed: true, reason: 'level' };
  }
  const roleId = effective.permissions.get(permission);
  if (roleId !== undefined) {
    if (!input.explain) return { allowed: true, reason: 'role' };
    const chain = [who, ...roleChain(effective, roleId), permission];
    return { allowed: true, reason: 'role', chain, explanation: chain.join(' → ') };
  }
  if (effective.superuser && permission.startsWith('auth.')) {
    if (!input.explain) return { allowed: true, reason: 'superuser' };
    const roleIdSu = effective.permissions.get(SUPERUSER) as string;
    const chain = [who, ...roleChain(effective, roleIdSu), SUPERUSER, permission];
    return { allowed: true, reason: 'superuser', chain, explanation: chain.join(' → ') };
  }
  if (input.object) {
    const grant = effective.grants.get(grantKey(permission, input.object.type, input.object.id));
    if (grant) {
      if (!input.explain) return { allowed: true, reason: 'grant' };
      const to = grant.roleId ? [who, ...roleChain(effective, grant.roleId)].join(' → ') : who;
      const object = { type: input.object.type, id: input.object.id };
      return {
        allowed: true,
        reason: 'grant',
        grant: { id: grant.id, to, permission, object },
        explanation: `${to} was granted ${permission} on ${object.type}:${object.id} (grant ${grant.id})`,
      };
    }
  }
  if (!input.explain) return { allowed: false, reason: 'missing_permission' };
  const where = input.object ? ` and no grant of it on ${input.object.type}:${input.object.id}` : '';
  const roles = [...effective.roles.values()].map((r) => r.name).sort();
  return {
    allowed: false,
    reason: 'missing_permission',
    explanation: `${who} lacks ${permission}: none of its roles (${roles.join(', ') || 'none'}) holds it${where}`,
  };
}

/** Everything a subject may do, flattened for diffs: codenames, and `codename on type:id` for object grants. */
export function flatten(effective: Effective): Set<string> {
  const out = new Set<string>(effective.permissions.keys());
  for (const key of effective.grants.keys()) {
    const [codename, type, id] = key.split('\u0000');
    out.add(`${codename} on ${type}:${id}`);
  }
  return out;
}
