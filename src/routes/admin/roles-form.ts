/**
 * The role editor's form: what it posts (zod), how it becomes the service's RoleInput, and the editor's
 * view model (permissions as checkboxes grouped by prefix, `documents.*`; parents as checkboxes). The same
 * fields are re-posted, hidden, by the preview's confirmation, so what is saved is what was previewed and
 * the server checks it again (no escalation, cycles) when it is saved.
 */
import { z } from 'zod';
import { MAX_PAGE_SIZE } from '../../lib/pagination.js';
import type { PermissionRow, RbacService, RoleInput, RoleWithLinks } from '../../services/rbac/service.js';

/** One checkbox sends a string, several an array, none nothing. */
const many = (max: number) => z.union([z.string().max(100), z.array(z.string().max(100)).max(max)]).optional().transform((v) => (v === undefined ? [] : [v].flat()));

export const roleForm = z.object({
  csrf: z.string().max(100),
  name: z.string().trim().min(1).max(100),
  description: z.string().max(1000).default(''),
  permissions: many(1000),
  parents: many(100),
  // The API's bound (roleInputSchema): a whole number from 0 to 1,000,000.
  level: z.string().trim().regex(/^\d{1,7}$/).default('0').refine((v) => Number(v) <= 1_000_000),
  mfa_required: z.literal('on').optional(),
});
export type RoleForm = z.output<typeof roleForm>;

export function roleInputOf(form: RoleForm): RoleInput {
  return { name: form.name, description: form.description, permissions: form.permissions, parents: form.parents, level: Number(form.level), mfaRequired: form.mfa_required === 'on' };
}

/** The fields of a role as the form shows them (an existing role, or what was posted). */
export interface RoleFields {
  name: string;
  description: string;
  permissions: string[];
  parents: string[];
  level: number;
  mfaRequired: boolean;
}

export const fieldsOfRole = (r: RoleWithLinks): RoleFields => ({ name: r.name, description: r.description, permissions: r.permissions, parents: r.parents, level: r.level, mfaRequired: r.mfaRequired });
export const fieldsOfInput = (i: RoleInput): RoleFields => ({
  name: i.name,
  description: i.description ?? '',
  permissions: i.permissions ?? [],
  parents: i.parents ?? [],
  level: i.level ?? 0,
  mfaRequired: i.mfaRequired ?? false,
});

/** The prefix a permission is grouped under: its codename up to the first dot (`documents.*`). */
const prefixOf = (codename: string) => `${codename.split('.')[0] ?? codename}.*`;

/** Every row of a list the editor offers (a role holds at most 1000 permissions and 100 parents). */
async function everything<T>(list: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor: string | null }>, max: number): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    out.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor && out.length < max);
  return out;
}

/** The editor's choices with the given fields checked; `selfId` is left out of the parents offered. */
export async function editorModel(rbac: RbacService, fields: RoleFields, selfId?: string) {
  const [permissions, roles] = await Promise.all([
    everything((cursor) => rbac.listPermissions({ limit: MAX_PAGE_SIZE, cursor }), 1000),
    everything((cursor) => rbac.listRoles({ limit: MAX_PAGE_SIZE, cursor }), 1000),
  ]);
  const groups = new Map<string, Array<PermissionRow & { checked: boolean }>>();
  for (const p of permissions) {
    const group = groups.get(prefixOf(p.codename)) ?? [];
    group.push({ ...p, checked: fields.permissions.includes(p.codename) });
    groups.set(prefixOf(p.codename), group);
  }
  return {
    fields,
    groups: [...groups].map(([prefix, items], i) => ({ prefix, id: `group-${i}`, items })),
    parents: roles.filter((r) => r.id !== selfId).map((r) => ({ name: r.name, id: r.id, checked: fields.parents.includes(r.name) })),
  };
}
