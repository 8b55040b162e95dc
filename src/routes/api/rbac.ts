/**
 * The authorization management API: permissions, roles, assignments, object grants and the decision API.
 * Thin: each route validates with zod, declares its permission in `config` (enforced by require-permission),
 * and calls the rbac service with the actor.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mapPage, pageSchema } from '../../lib/pagination.js';
import { actorOf } from '../../plugins/require-permission.js';
import type { DryRun, RbacService } from '../../services/rbac/service.js';
import {
  assignmentInputSchema,
  assignmentView,
  dryRunView,
  effectiveView,
  grantInputSchema,
  grantView,
  permissionInputSchema,
  permissionView,
  roleInput,
  roleInputSchema,
  roleView,
} from './rbac-schemas.js';
import {
  checkSchema,
  decisionSchema,
  dryRunQuery,
  dryRunSchema,
  effectiveSchema,
  errorSchema,
  forbiddenSchema,
  grantSchema,
  idParams,
  listQuery,
  permissionSchema,
  roleSchema,
} from './schemas.js';

const errors = { 400: errorSchema, 401: errorSchema, 403: forbiddenSchema, 404: errorSchema, 409: errorSchema };
const MAX_BATCH = 100;

const isDryRun = (result: unknown): result is DryRun => typeof result === 'object' && result !== null && 'dryRun' in result;

export async function rbacRoutes(fastify: FastifyInstance, options: { rbac: RbacService }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { rbac } = options;

  // ---- permissions
  const pTags = ['permissions'];
  app.get(
    '/api/auth/permissions/',
    {
      config: { permission: 'auth.permissions.manage' },
      schema: {
        tags: pTags,
        summary: 'List permissions (by codename)',
        querystring: listQuery.extend({ codename: z.string().max(100).optional(), name: z.string().max(100).optional() }),
        response: { 200: pageSchema(permissionSchema), ...errors },
      },
    },
    async (request) => mapPage(await rbac.listPermissions(request.query), permissionView),
  );
  app.post(
    '/api/auth/permissions/',
    {
      config: { permission: 'auth.permissions.manage' },
      schema: { tags: pTags, summary: 'Create a permission', body: permissionInputSchema, response: { 201: permissionSchema, ...errors } },
    },
    async (request, reply) => reply.code(201).send(permissionView(await rbac.createPermission(request.body, actorOf(request)))),
  );
  app.get(
    '/api/auth/permissions/:id/',
    { config: { permission: 'auth.permissions.manage' }, schema: { tags: pTags, summary: 'Show a permission', params: idParams, response: { 200: permissionSchema, ...errors } } },
    async (request) => permissionView(await rbac.getPermission(request.params.id)),
  );
  app.put(
    '/api/auth/permissions/:id/',
    {
      config: { permission: 'auth.permissions.manage' },
      schema: { tags: pTags, summary: 'Replace a permission', params: idParams, body: permissionInputSchema, response: { 200: permissionSchema, ...errors } },
    },
    async (request) => permissionView(await rbac.updatePermission(request.params.id, request.body, actorOf(request))),
  );
  app.delete(
    '/api/auth/permissions/:id/',
    { config: { permission: 'auth.permissions.manage' }, schema: { tags: pTags, summary: 'Delete a permission (and every use of it)', params: idParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await rbac.deletePermission(request.params.id, actorOf(request));
      return reply.code(204).send(null);
    },
  );

  // ---- roles
  const rTags = ['roles'];
  app.get(
    '/api/auth/roles/',
    {
      config: { permission: 'auth.roles.manage' },
      schema: { tags: rTags, summary: 'List roles (by name)', querystring: listQuery.extend({ name: z.string().max(100).optional() }), response: { 200: pageSchema(roleSchema), ...errors } },
    },
    async (request) => mapPage(await rbac.listRoles(request.query), roleView),
  );
  app.post(
    '/api/auth/roles/',
    { config: { permission: 'auth.roles.manage' }, schema: { tags: rTags, summary: 'Create a role', body: roleInputSchema, response: { 201: roleSchema, ...errors } } },
    async (request, reply) => reply.code(201).send(roleView(await rbac.createRole(roleInput(request.body), actorOf(request)))),
  );
  app.get(
    '/api/auth/roles/:id/',
    {
      config: { permission: 'auth.roles.manage' },
      schema: {
        tags: rTags,
        summary: 'Show a role with its effective (inherited) permissions',
        params: idParams,
        response: { 200: roleSchema.extend({ effective_permissions: z.array(z.string()), effective_level: z.number() }), ...errors },
      },
    },
    async (request) => {
      const role = await rbac.getRole(request.params.id);
      return { ...roleView(role), effective_permissions: role.effectivePermissions, effective_level: role.effectiveLevel };
    },
  );
  app.put(
    '/api/auth/roles/:id/',
    {
      config: { permission: 'auth.roles.manage' },
      schema: {
        tags: rTags,
        summary: 'Replace a role; with ?dry_run=true, change nothing and show which users would gain or lose what',
        params: idParams,
        querystring: dryRunQuery,
        body: roleInputSchema,
        response: { 200: z.union([roleSchema, dryRunSchema]), ...errors },
      },
    },
    async (request) => {
      const result = await rbac.updateRole(request.params.id, roleInput(request.body), actorOf(request), { dryRun: request.query.dry_run === 'true' });
      return isDryRun(result) ? dryRunView(result) : roleView(result);
    },
  );
  app.delete(
    '/api/auth/roles/:id/',
    {
      config: { permission: 'auth.roles.manage' },
      schema: { tags: rTags, summary: 'Delete a role (its assignments, grants and inheritance links go with it)', params: idParams, response: { 204: z.null(), ...errors } },
    },
    async (request, reply) => {
      await rbac.deleteRole(request.params.id, actorOf(request));
      return reply.code(204).send(null);
    },
  );

  // ---- assignments
  const aTags = ['assignments'];
  const assignmentSchema = z.object({ role_id: z.string(), role: z.string(), expires_at: z.string().nullable(), active: z.boolean(), created_at: z.string() });
  app.get(
    '/api/auth/users/:id/roles/',
    { config: { permission: 'auth.roles.manage' }, schema: { tags: aTags, summary: "A user's role assignments", params: idParams, response: { 200: pageSchema(assignmentSchema), ...errors } } },
    async (request) => ({
      items: (await rbac.listUserRoles(request.params.id)).map((a) => ({ ...assignmentView(a), active: a.active, created_at: a.createdAt.toISOString() })),
      next_cursor: null,
    }),
  );
  app.post(
    '/api/auth/users/:id/roles/',
    {
      config: { permission: 'auth.roles.manage' },
      schema: {
        tags: aTags,
        summary: 'Assign a role, optionally until expires_at; ?dry_run=true previews',
        params: idParams,
        querystring: dryRunQuery,
        body: assignmentInputSchema,
        response: { 200: dryRunSchema, 201: z.object({ role_id: z.string(), role: z.string(), expires_at: z.string().nullable() }), ...errors },
      },
    },
    async (request, reply) => {
      const input = { role: request.body.role, expiresAt: request.body.expires_at === undefined ? undefined : new Date(request.body.expires_at) };
      const result = await rbac.assignRole(request.params.id, input, actorOf(request), { dryRun: request.query.dry_run === 'true' });
      return isDryRun(result) ? dryRunView(result) : reply.code(201).send(assignmentView(result));
    },
  );
  app.delete(
    '/api/auth/users/:id/roles/:role_id/',
    {
      config: { permission: 'auth.roles.manage' },
      schema: {
        tags: aTags,
        summary: 'Remove a role assignment; ?dry_run=true previews',
        params: z.object({ id: z.string().max(100), role_id: z.string().max(100) }),
        querystring: dryRunQuery,
        response: { 200: dryRunSchema, 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const result = await rbac.unassignRole(request.params.id, request.params.role_id, actorOf(request), { dryRun: request.query.dry_run === 'true' });
      return result ? dryRunView(result) : reply.code(204).send(null);
    },
  );
  app.get(
    '/api/auth/users/:id/permissions/',
    {
      config: { permission: 'auth.roles.manage' },
      schema: { tags: aTags, summary: "A user's effective permissions, roles (inherited included), level and object grants", params: idParams, response: { 200: effectiveSchema, ...errors } },
    },
    async (request) => effectiveView(await rbac.userPermissions(request.params.id)),
  );

  // ---- object grants
  const gTags = ['grants'];
  app.get(
    '/api/auth/grants/',
    {
      config: { permission: 'auth.grants.manage' },
      schema: {
        tags: gTags,
        summary: 'List object grants, filtered by subject (user_id or role), permission and object',
        querystring: listQuery.extend({
          user_id: z.string().max(100).optional(),
          role: z.string().max(100).optional(),
          permission: z.string().max(100).optional(),
          object_type: z.string().max(100).optional(),
          object_id: z.string().max(200).optional(),
        }),
        response: { 200: pageSchema(grantSchema), ...errors },
      },
    },
    async (request) => {
      const { user_id: userId, object_type: objectType, object_id: objectId, ...rest } = request.query;
      return mapPage(await rbac.listGrants({ ...rest, userId, objectType, objectId }), grantView);
    },
  );
  app.post(
    '/api/auth/grants/',
    {
      config: { permission: 'auth.grants.manage' },
      schema: {
        tags: gTags,
        summary: 'Grant a permission on one object to a user or a role; ?dry_run=true previews',
        querystring: dryRunQuery,
        body: grantInputSchema,
        response: { 200: dryRunSchema, 201: grantSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { user_id: userId, ...grant } = request.body;
      const result = await rbac.createGrant({ ...grant, userId }, actorOf(request), { dryRun: request.query.dry_run === 'true' });
      if (!result) throw new Error('a grant created without ifAbsent is always answered');
      return isDryRun(result) ? dryRunView(result) : reply.code(201).send(grantView(result));
    },
  );
  app.delete(
    '/api/auth/grants/:id/',
    {
      config: { permission: 'auth.grants.manage' },
      schema: { tags: gTags, summary: 'Revoke an object grant; ?dry_run=true previews', params: idParams, querystring: dryRunQuery, response: { 200: dryRunSchema, 204: z.null(), ...errors } },
    },
    async (request, reply) => {
      const result = await rbac.deleteGrant(request.params.id, actorOf(request), { dryRun: request.query.dry_run === 'true' });
      return result ? dryRunView(result) : reply.code(204).send(null);
    },
  );

  // ---- decisions
  app.post(
    '/api/auth/check/',
    {
      config: { authenticated: true },
      // The hot path: answers are built by decide() with a fixed shape, so plain JSON.stringify is enough; the
      // response schema stays for the OpenAPI document (validating each answer with zod cost ~10 % throughput).
      serializerCompiler: () => (data) => JSON.stringify(data),
      schema: {
        tags: ['decisions'],
        summary: 'Is the subject (default: the caller) allowed? Asking about another subject needs auth.check. Batch with {checks: [...]}',
        body: z.union([checkSchema, z.object({ checks: z.array(checkSchema).min(1).max(MAX_BATCH) }).strict()]),
        response: { 200: z.union([decisionSchema, z.object({ results: z.array(decisionSchema) })]), ...errors },
      },
    },
    async (request) => {
      const caller = request.authz;
      if (!caller) throw new Error('guard missing');
      const body = request.body;
      if ('checks' in body) {
        const results = [];
        for (const c of body.checks) results.push(await rbac.check(caller, c));
        return { results };
      }
      return rbac.check(caller, body);
    },
  );
}
