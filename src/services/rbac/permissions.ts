/**
 * Permissions: list, show, create, change, delete. Built-in permissions keep their name and codename and
 * cannot be deleted. No escalation: only a holder may change or delete a permission, and renaming one's
 * codename confers the new codename on every holder, so it needs the new codename too.
 */
import { AppError } from '../../errors/index.js';
import { decodeCursor, encodeCursor } from '../../lib/pagination.js';
import type { PermissionRow } from '../../queries/rbac.js';
import { isUuid } from '../../lib/uuid.js';
import { auditEvent, isUniqueViolation, notFound, type Actor, type RbacWritePath } from './write-path.js';

export interface PermissionInput {
  name: string;
  codename: string;
  description?: string | undefined;
}

/** The permission as the audit log records it (before and after a change). */
export function permissionRecord(p: PermissionRow) {
  return { id: p.id, name: p.name, codename: p.codename, description: p.description, builtin: p.builtin, created_at: p.createdAt.toISOString(), updated_at: p.updatedAt.toISOString() };
}

const conflict = () => new AppError('conflict', 'a permission with this name or codename already exists', 409);

export function createPermissionCommands(path: RbacWritePath) {
  const { queries, write, assertConfers } = path;
  return {
    async listPermissions(args: { limit: number; cursor?: string | undefined; codename?: string | undefined; name?: string | undefined }) {
      const rows = await queries.listPermissions({ ...args, after: decodeCursor(args.cursor) });
      const items = rows.slice(0, args.limit);
      const last = items[items.length - 1];
      return { items, nextCursor: rows.length > args.limit && last ? encodeCursor({ key: last.codename, id: last.id }) : null };
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
        return { result: row, events: [auditEvent(actor, 'permission.created', { type: 'permission', id: row.id }, { before: null, after: permissionRecord(row) })] };
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
        return { result: row, events: [auditEvent(actor, 'permission.updated', { type: 'permission', id }, { before: permissionRecord(existing), after: permissionRecord(row) })] };
      });
    },
    async deletePermission(id: string, actor: Actor): Promise<void> {
      return write(async (q) => {
        const existing = isUuid(id) ? await q.findPermissionById(id) : undefined;
        if (!existing) throw notFound('permission');
        if (existing.builtin) throw new AppError('conflict', `${existing.codename} is built in and cannot be deleted`, 409);
        assertConfers(actor, [existing.codename], 0, `deleting permission ${existing.codename}`);
        await q.deletePermission(id);
        return { result: undefined, events: [auditEvent(actor, 'permission.deleted', { type: 'permission', id }, { before: permissionRecord(existing), after: null })] };
      });
    },
  };
}
