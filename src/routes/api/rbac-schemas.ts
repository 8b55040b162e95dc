/**
 * The authorization API's request bodies and its snake_case views of what the rbac service answers. The
 * response schemas (for the OpenAPI document) are in schemas.ts.
 */
import { z } from 'zod';
import type { Effective } from '../../services/rbac/effective.js';
import { codenameSchema, nameSchema, objectSchema, type DryRun, type RoleInput } from '../../services/rbac/service.js';

export const permissionInputSchema = z
  .object({ name: nameSchema, codename: codenameSchema, description: z.string().max(1000).default('') })
  .strict();

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

export const assignmentInputSchema = z.object({ role: z.string().min(1).max(100), expires_at: z.iso.datetime({ offset: true }).optional() }).strict();

export const grantInputSchema = z
  .object({ user_id: z.string().max(100).optional(), role: z.string().min(1).max(100).optional(), permission: z.string().min(1).max(100), object: objectSchema.strict() })
  .strict()
  .refine((g) => (g.user_id === undefined) !== (g.role === undefined), { message: 'give exactly one of user_id and role', path: ['user_id'] });

export function roleInput(body: z.output<typeof roleInputSchema>): RoleInput {
  return { name: body.name, description: body.description, permissions: body.permissions, parents: body.parents, level: body.level, mfaRequired: body.mfa_required };
}

// One view per aggregate, in the service: the API answers what the audit log records.
export { assignmentView, grantView, permissionView, roleView } from '../../services/rbac/service.js';

export function dryRunView(d: DryRun) {
  return {
    dry_run: true as const,
    changes: d.changes.map((c) => ({ user_id: c.userId, email: c.email, gained: c.gained, lost: c.lost, level_before: c.levelBefore, level_after: c.levelAfter })),
  };
}

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
