/**
 * Permissions: list, show, create, change, delete. Built-in permissions keep their name and codename and
 * cannot be deleted. No escalation: only a holder may change or delete a permission, and renaming one's
 * codename confers the new codename on every holder, so it needs the new codename too.
 */
import { AppError } from '../../errors/index.js';
import { decodeCursor, toPage, type Page } from '../../lib/pagination.js';
import type { PermissionRow, RbacQueries } from '../../queries/rbac.js';
import { isUuid } from '../../lib/uuid.js';
import { auditEvent, isUniqueViolation, notFound, type Actor, type RbacWritePath } from './write-path.js';

export interface PermissionInput {
  name: string;
  codename: string;
  description?: string | undefined;
}

/** The permission as the API answers it and the audit log records it (before and after a change): one view for both. */
export function permissionView(p: PermissionRow) {
  return { id: p.id, name: p.name, codename: p.codename, description: p.description, builtin: p.builtin, created_at: p.createdAt.toISOString(), updated_at: p.updatedAt.toISOString() };
}

const conflict = () => new AppError('conflict', 'a permission with this name or codename already exists', 409);

export function createPermissionCommands(path: RbacWritePath) {
  const { queries, write, dryRun, assertConfers, clock } = path;
  return {
    /** By codename; the cursor is the last row's (codename, id). */
    async listPermissions(args: { limit: number; cursor?: string | undefined; codename?: string | undefined; name?: string | undefined }): Promise<Page<PermissionRow>> {
      const rows = await queries.listPermissions({ ...args, after: decodeCursor(args.cursor) });
      return toPage(rows, args.limit, (row) => ({ key: row.codename, id: row.id }));
    },
    async getPermission(id: string): Promise<PermissionRow> {
      const row = isUuid(id) ? await queries.findPermissionById(id) : undefined;
      if (!row) throw notFound('permission');
      return row;
    },
    /** The permission with this codename, if there is one. */
    async findPermission(codename: string): Promise<PermissionRow | undefined> {
      return (await queries.findPermissionsByCodenames([codename]))[0];
    },
    async createPermission(input: PermissionInput, actor: Actor): Promise<PermissionRow> {
      return write(async (q) => {
        if (await q.findPermissionConflict(input.name, input.codename)) throw conflict();
        const row = await q.insertPermission({ name: input.name, codename: input.codename, description: input.description ?? '' }).catch((err: unknown) => {
          throw isUniqueViolation(err) ? conflict() : err;
        });
        return { result: row, events: [auditEvent(actor, 'permission.created', { type: 'permission', id: row.id }, { before: null, after: permissionView(row) })] };
      });
    },
    async updatePermission(id: string, input: PermissionInput, actor: Actor): Promise<PermissionRow> {
      return write(async (q) => {
        const existing = isUuid(id) ? await q.findPermissionById(id) : undefined;
        if (!existing) throw notFound('permission');
        if (existing.builtin && (input.codename !== existing.codename || input.name !== existing.name)) {
          throw new AppError('conflict', `${existing.codename} is built in: its name and codename cannot change`, 409);
        }
        assertConfers(actor, [existing.codename], 0, `changing permission ${existing.codename}`);
        // A new codename is a new permission for every role and grant that holds this one: granting it to all
        // of them at once, so the usual no-escalation rule applies to the new codename as well.
        if (input.codename !== existing.codename) assertConfers(actor, [input.codename], 0, `renaming ${existing.codename} to ${input.codename}`);
        if (await q.findPermissionConflict(input.name, input.codename, id)) throw conflict();
        const row = await q.updatePermission(id, { name: input.name, codename: input.codename, description: input.description ?? '' });
        if (!row) throw notFound('permission');
        return { result: row, events: [auditEvent(actor, 'permission.updated', { type: 'permission', id }, { before: permissionView(existing), after: permissionView(row) })] };
      });
    },
    /** What uses a permission (the roles holding it directly, how many object grants), shown before deleting it. */
    async permissionDependents(id: string) {
      const row = isUuid(id) ? await queries.findPermissionById(id) : undefined;
      if (!row) throw notFound('permission');
      return queries.findPermissionDependents(id);
    },
    /** Deletes a permission and every use of it; with `dryRun`, only measures who would lose what. */
    async deletePermission(id: string, actor: Actor, options: { dryRun?: boolean } = {}) {
      const affected = async (q: RbacQueries) => (isUuid(id) ? q.findUsersAffectedByPermission(id, clock()) : []);
      const apply = async (q: RbacQueries) => {
        const existing = isUuid(id) ? await q.findPermissionById(id) : undefined;
        if (!existing) throw notFound('permission');
        if (existing.builtin) throw new AppError('conflict', `${existing.codename} is built in and cannot be deleted`, 409);
        assertConfers(actor, [existing.codename], 0, `deleting permission ${existing.codename}`);
        await q.deletePermission(id);
        return { result: undefined, events: [auditEvent(actor, 'permission.deleted', { type: 'permission', id }, { before: permissionView(existing), after: null })] };
      };
      if (options.dryRun) return dryRun(affected, apply);
      return write(apply);
    },
  };
}
