/**
 * User administration: list, show, create, update (profile, disable/enable), delete. All need auth.users.manage.
 * Unlock ends a brute-force lockout of the user's email; an MFA reset removes every factor (a lost phone).
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pageSchema } from '../../lib/pagination.js';
import { actorOf } from '../../plugins/require-permission.js';
import { userCreateSchema, userUpdateSchema, type UserAdminService } from '../../services/user-admin.js';
import { errorSchema, forbiddenSchema, idParams, listQuery, userSchema } from './schemas.js';

const errors = { 400: errorSchema, 401: errorSchema, 403: forbiddenSchema, 404: errorSchema, 409: errorSchema };

export async function userAdminRoutes(fastify: FastifyInstance, options: { userAdmin: UserAdminService }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { userAdmin } = options;
  const tags = ['users'];
  const config = { permission: 'auth.users.manage' } as const;

  app.get(
    '/api/auth/users/',
    { config, schema: { tags, summary: 'List users (oldest first), filtered by email', querystring: listQuery.extend({ email: z.string().max(254).optional() }), response: { 200: pageSchema(userSchema), ...errors } } },
    async (request) => userAdmin.listUsers(request.query),
  );
  app.post(
    '/api/auth/users/',
    { config, schema: { tags, summary: 'Create a user', body: userCreateSchema, response: { 201: userSchema, ...errors } } },
    async (request, reply) => reply.code(201).send(await userAdmin.createUser(request.body, actorOf(request))),
  );
  app.get(
    '/api/auth/users/:id/',
    { config, schema: { tags, summary: 'Show a user', params: idParams, response: { 200: userSchema, ...errors } } },
    async (request) => userAdmin.getUser(request.params.id),
  );
  app.patch(
    '/api/auth/users/:id/',
    { config, schema: { tags, summary: 'Update a user (name, phone, email_verified, disabled)', params: idParams, body: userUpdateSchema, response: { 200: userSchema, ...errors } } },
    async (request) => userAdmin.updateUser(request.params.id, request.body, actorOf(request)),
  );
  app.post(
    '/api/auth/users/:id/unlock/',
    {
      config,
      schema: { tags, summary: 'Clear failed-login counts and locks of the user', params: idParams, response: { 200: z.object({ id: z.uuid(), cleared: z.number().int() }), ...errors } },
    },
    async (request) => userAdmin.unlockUser(request.params.id, actorOf(request)),
  );
  app.post(
    '/api/auth/users/:id/mfa/reset/',
    {
      config,
      schema: {
        tags,
        summary: 'Remove every second factor and trusted device of the user (a lost phone); the user is told by email',
        params: idParams,
        response: { 200: z.object({ id: z.uuid(), removed: z.number().int() }), ...errors },
      },
    },
    async (request) => userAdmin.resetUserMfa(request.params.id, actorOf(request)),
  );
  app.delete(
    '/api/auth/users/:id/',
    { config, schema: { tags, summary: 'Delete a user, their assignments, grants, tokens and sessions', params: idParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await userAdmin.deleteUser(request.params.id, actorOf(request));
      return reply.code(204).send(null);
    },
  );
}
