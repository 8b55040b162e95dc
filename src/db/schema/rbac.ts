import { sql } from 'drizzle-orm';
import { boolean, check, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { clients } from './clients.js';
import { users } from './users.js';

/** What may be done, named by a stable codename ("documents.edit"). `builtin` rows (auth.*) cannot be changed or removed. */
export const permissions = pgTable('permissions', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  codename: text('codename').notNull().unique(),
  description: text('description').notNull().default(''),
  builtin: boolean('builtin').notNull().default(false),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** A named set of permissions; it also holds every permission of its parent roles (see role_parents). */
export const roles = pgTable('roles', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  /** Access level; a subject's effective level is the highest among the roles it holds, inherited ones included. */
  level: integer('level').notNull().default(0),
  mfaRequired: boolean('mfa_required').notNull().default(false),
  builtin: boolean('builtin').notNull().default(false),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const rolePermissions = pgTable(
  'role_permissions',
  {
    roleId: uuid('role_id').notNull().references(() => roles.id, { onDelete: 'cascade' }),
    permissionId: uuid('permission_id').notNull().references(() => permissions.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.roleId, t.permissionId] }), index('role_permissions_permission_idx').on(t.permissionId)],
);

/** Inheritance edges: `role_id` inherits from `parent_id`. Writes refuse cycles; reads terminate even if one slipped in. */
export const roleParents = pgTable(
  'role_parents',
  {
    roleId: uuid('role_id').notNull().references(() => roles.id, { onDelete: 'cascade' }),
    parentId: uuid('parent_id').notNull().references(() => roles.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.roleId, t.parentId] }), index('role_parents_parent_idx').on(t.parentId)],
);

/** A user holds a role, until `expires_at` when set (checked at read time: no job is needed). */
export const userRoles = pgTable(
  'user_roles',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    roleId: uuid('role_id').notNull().references(() => roles.id, { onDelete: 'cascade' }),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('user_roles_user_role_key').on(t.userId, t.roleId), index('user_roles_role_idx').on(t.roleId)],
);

/** A client (service account) holds a role; its client-credentials tokens carry the role's permissions. */
export const clientRoles = pgTable(
  'client_roles',
  {
    clientId: text('client_id').notNull().references(() => clients.clientId, { onDelete: 'cascade' }),
    roleId: uuid('role_id').notNull().references(() => roles.id, { onDelete: 'cascade' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.roleId] }), index('client_roles_role_idx').on(t.roleId)],
);

/** Object-level grants: a user or a role may use one permission on one object (`document:17`). */
export const objectGrants = pgTable(
  'object_grants',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    roleId: uuid('role_id').references(() => roles.id, { onDelete: 'cascade' }),
    permissionId: uuid('permission_id').notNull().references(() => permissions.id, { onDelete: 'cascade' }),
    objectType: text('object_type').notNull(),
    objectId: text('object_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('object_grants_one_subject', sql`(${t.userId} is null) <> (${t.roleId} is null)`),
    uniqueIndex('object_grants_user_key').on(t.userId, t.permissionId, t.objectType, t.objectId).where(sql`${t.userId} is not null`),
    uniqueIndex('object_grants_role_key').on(t.roleId, t.permissionId, t.objectType, t.objectId).where(sql`${t.roleId} is not null`),
    index('object_grants_object_idx').on(t.objectType, t.objectId),
    index('object_grants_permission_idx').on(t.permissionId),
  ],
);
