/** Zod schemas shared by the authorization API routes (request validation and the OpenAPI document). */
import { z } from 'zod';
import { pageQuerySchema } from '../../lib/pagination.js';
import { codenameSchema, nameSchema, objectSchema } from '../../services/rbac/service.js';

/** The one error body of the JSON API: a stable code and a message, plus what some codes add (`required`, `retry_after`, ...). */
export const errorSchema = z.object({ error: z.string(), message: z.string() }).passthrough();
export const forbiddenSchema = errorSchema.extend({ required: z.string().optional() });
export const idParams = z.object({ id: z.string().max(100) });
export const dryRunQuery = z.object({ dry_run: z.enum(['true', 'false']).optional() });
export const listQuery = pageQuerySchema;

export const permissionSchema = z.object({
  id: z.string(),
  name: z.string(),
  codename: z.string(),
  description: z.string(),
  builtin: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const roleSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  permissions: z.array(z.string()),
  parents: z.array(z.string()),
  level: z.number(),
  mfa_required: z.boolean(),
  builtin: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const dryRunSchema = z.object({
  dry_run: z.literal(true),
  changes: z.array(
    z.object({
      user_id: z.string(),
      email: z.string().nullable(),
      gained: z.array(z.string()),
      lost: z.array(z.string()),
      level_before: z.number(),
      level_after: z.number(),
    }),
  ),
});

export const grantSchema = z.object({
  id: z.string(),
  user_id: z.string().nullable(),
  role: z.string().nullable(),
  role_id: z.string().nullable(),
  permission: z.string(),
  object: z.object({ type: z.string(), id: z.string() }),
  created_at: z.string(),
});

export const effectiveSchema = z.object({
  permissions: z.array(z.string()),
  roles: z.array(z.object({ id: z.string(), name: z.string(), direct: z.boolean(), level: z.number() })),
  level: z.number(),
  mfa_required: z.boolean(),
  grants: z.array(z.object({ permission: z.string(), object: z.object({ type: z.string(), id: z.string() }) })),
});

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  email_verified: z.boolean(),
  name: z.string().nullable(),
  phone: z.string().nullable(),
  phone_verified: z.boolean(),
  disabled: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const checkSchema = z
  .object({
    subject: z.string().max(100).optional(),
    permission: codenameSchema.optional(),
    object: objectSchema.strict().optional(),
    min_level: z.number().int().min(0).optional(),
    explain: z.boolean().optional(),
  })
  .strict()
  .refine((c) => c.permission !== undefined || c.min_level !== undefined, { message: 'give permission, min_level or both', path: ['permission'] });

export const decisionSchema = z.object({
  allowed: z.boolean(),
  reason: z.string(),
  explanation: z.string().optional(),
  chain: z.array(z.string()).optional(),
  grant: z
    .object({ id: z.string(), to: z.string(), permission: z.string(), object: z.object({ type: z.string(), id: z.string() }) })
    .optional(),
});

export { codenameSchema, nameSchema, objectSchema };
