/**
 * User administration: list, show, create, update (profile, disable/enable), delete. All need auth.users.manage.
 * Unlock ends a brute-force lockout of the user's email; an MFA reset removes every factor (a lost phone) and
 * ends every sign-in of the user; `sessions/end` ends every sign-in (sessions, tokens, SSO sessions, grants).
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mapPage, pageSchema } from '../../lib/pagination.js';
import { actorOf } from '../../plugins/require-permission.js';
import { userView, type UserAdminService } from '../../services/user-admin.js';
import { passwordSchema, phoneSchema } from '../../services/users.js';
import { errorSchema, forbiddenSchema, idParams, listQuery, userSchema } from './schemas.js';

const userCreateSchema = z
  .object({
    email: z.string().max(254),
    name: z.string().min(1).max(200).optional(),
    phone: phoneSchema.optional(),
    password: passwordSchema.optional(),
    email_verified: z.boolean().optional(),
  })
  .strict();

const userUpdateSchema = z
  .object({
    name: z.string().min(1).max(200).nullable().optional(),
    phone: phoneSchema.nullable().optional(),
    email_verified: z.boolean().optional(),
    disabled: z.boolean().optional(),
  })
  .strict();

const errors = { 400: errorSchema, 401: errorSchema, 403: forbiddenSchema, 404: errorSchema, 409: errorSchema };

export async function userAdminRoutes(fastify: FastifyInstance, options: { userAdmin: UserAdminService }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { userAdmin } = options;
  const tags = ['users'];
  const config = { permission: 'auth.users.manage' } as const;

  app.get(
    '/api/auth/users/',
    { config, schema: { tags, summary: 'List users (oldest first), filtered by a part of the email (`email`) or of the email or name (`search`)', querystring: listQuery.extend({ email: z.string().max(254).optional(), search: z.string().max(254).optional() }), response: { 200: pageSchema(userSchema), ...errors } } },
    async (request) => mapPage(await userAdmin.listUsers(request.query), userView),
  );
  app.post(
    '/api/auth/users/',
    { config, schema: { tags, summary: 'Create a user', body: userCreateSchema, response: { 201: userSchema, ...errors } } },
    async (request, reply) => {
      const { email_verified: emailVerified, ...rest } = request.body;
      return reply.code(201).send(userView(await userAdmin.createUser({ ...rest, emailVerified }, actorOf(request))));
    },
  );
  app.get(
    '/api/auth/users/:id/',
    { config, schema: { tags, summary: 'Show a user', params: idParams, response: { 200: userSchema, ...errors } } },
    async (request) => userView(await userAdmin.getUser(request.params.id)),
  );
  app.patch(
    '/api/auth/users/:id/',
    { config, schema: { tags, summary: 'Update a user (name, phone, email_verified, disabled)', params: idParams, body: userUpdateSchema, response: { 200: userSchema, ...errors } } },
    async (request) => {
      const { email_verified: emailVerified, ...rest } = request.body;
      return userView(await userAdmin.updateUser(request.params.id, { ...rest, emailVerified }, actorOf(request)));
    },
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
        summary: 'Remove every second factor and trusted device of the user (a lost phone) and end every sign-in of theirs; the user is told by email',
        params: idParams,
        response: { 200: z.object({ id: z.uuid(), removed: z.number().int(), ended: z.number().int() }), ...errors },
      },
    },
    async (request) => userAdmin.resetUserMfa(request.params.id, actorOf(request)),
  );
  app.post(
    '/api/auth/users/:id/sessions/end/',
    {
      config,
      schema: {
        tags,
        summary: 'End every sign-in of the user: sessions, personal tokens, browser SSO sessions and application grants',
        params: idParams,
        response: { 200: z.object({ id: z.uuid(), ended: z.number().int() }), ...errors },
      },
    },
    async (request) => userAdmin.endUserSessions(request.params.id, actorOf(request)),
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
