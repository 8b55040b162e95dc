/**
 * What a role name, a permission codename, an object reference and an id look like. The management API's
 * request schemas (routes/api/rbac-schemas.ts) and the bootstrap file's schema are built from these, so a
 * name accepted by one is accepted by the other.
 */
import { z } from 'zod';

export const nameSchema = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
export const codenameSchema = z
  .string()
  .max(100, 'must be at most 100 characters')
  .regex(/^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*$/, 'must be lower-case words separated by dots, such as documents.edit');
export const objectSchema = z.object({
  type: z.string().min(1).max(100).regex(/^[A-Za-z0-9._:-]+$/, 'must be letters, digits, . _ : -'),
  id: z.string().min(1).max(200),
});

