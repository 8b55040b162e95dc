/**
 * Managing who may do what, and the decisions answered from the cache: the rbac module's one entry point.
 * Framework-free: routes pass an Actor in. Each aggregate has its file (permissions, roles, assignments,
 * grants); every change goes through the one write path (write-path.ts: transaction, NOTIFY, dry run, no
 * escalation, audit), which the bootstrap file uses too.
 */
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import type { AuditService } from '../audit.js';
import { createAssignmentCommands } from './assignments.js';
import { createBulkAssignmentCommands } from './bulk-assignments.js';
import { ensureBuiltins } from './builtins.js';
import type { DecisionCache } from './cache.js';
import { decide, holds, type CheckInput, type Decision, type Effective, type SubjectRef } from './effective.js';
import { createGrantCommands } from './grants.js';
import { createPermissionCommands } from './permissions.js';
import { createPeopleLookups } from './people.js';
import { createRoleCommands } from './roles.js';
import { createRbacWritePath, forbidden } from './write-path.js';

// The module's public names, for its callers (routes, plugins, other services).
export { ADMIN_ROLE, BUILTIN_PERMISSIONS, type AuthPermission } from './builtins.js';
export { codenameSchema, nameSchema, objectSchema } from './names.js';
export { systemActor, type Actor, type DryRun } from './write-path.js';
export { permissionView, type PermissionInput } from './permissions.js';
export { roleView, type RoleInput, type RoleWithLinks } from './roles.js';
export { assignmentView, type Assignment } from './assignments.js';
export { grantView, type GrantInput } from './grants.js';
export { MAX_BULK_EMAILS, parseEmailList, type BulkAssignmentInput, type BulkAssignmentPreview, type BulkAssignmentResult } from './bulk-assignments.js';
export { blastRadius, type BlastRadius } from './blast-radius.js';
/** Rows the service answers with, as its callers see them. */
export type { GrantListing, PermissionRow } from '../../queries/rbac.js';

export interface RbacServiceDeps {
  /** The database, or a transaction every change joins (the bootstrap file applies in one). */
  db: Db;
  audit: AuditService;
  cache: DecisionCache;
  clock: Clock;
}

export function createRbacService(deps: RbacServiceDeps) {
  const { cache } = deps;
  const path = createRbacWritePath(deps);

  return {
    /** The decision cache the request guard and the notification listener share. */
    cache,
    ensureBuiltins: () => ensureBuiltins(deps.db),
    ...createPermissionCommands(path),
    ...createRoleCommands(path),
    ...createAssignmentCommands(path),
    ...createBulkAssignmentCommands(path),
    ...createGrantCommands(path),
    ...createPeopleLookups(path),
    /** Tells every replica (and this one) that effective permissions changed outside a write (a user disabled or deleted). */
    notifyChanged: path.notifyChanged,

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
}
export type RbacService = ReturnType<typeof createRbacService>;
