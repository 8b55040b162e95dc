/**
 * The client management API (auth.clients.manage): OAuth clients with RFC 7591 metadata names, secret
 * rotation, and a service account's roles. Thin: schemas for the OpenAPI document, the permission declared in
 * `config`, the client management service deciding and auditing.
 *
 * Create and replace declare their body schema with `attachValidation`: the service validates the body with
 * the same schema the CLI and the bootstrap file use, so a refusal is audited and answers
 * `400 {error: "invalid_request", message: "<field>: <why>"}`, and nothing is written.
 * An answer that carries a secret is `Cache-Control: no-store` (RFC 6749 §5.1 asks it of token responses).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pageSchema } from '../../lib/pagination.js';
import { actorOf } from '../../plugins/require-permission.js';
import { clientInputSchema, clientUpdateSchema } from '../../services/clients.js';
import type { ClientManagement, ManagedClient } from '../../services/clients/management.js';
import { errorSchema, forbiddenSchema, idParams, listQuery } from './schemas.js';

const errors = { 400: errorSchema, 401: errorSchema, 403: forbiddenSchema, 404: errorSchema, 409: errorSchema };
const tags = ['clients'];
const permission = 'auth.clients.manage' as const;

/** A client as the API shows it: its RFC 7591 metadata and what we know of its secret, never the secret. */
const clientSchema = z
  .object({
    client_id: z.string(),
    has_secret: z.boolean().describe('Whether the client authenticates with a secret (the secret itself is shown only once)'),
    previous_secret_expires_at: z.string().nullable().describe('Until when the secret replaced by the last rotation is still accepted'),
    client_id_issued_at: z.number().describe('RFC 7591 §3.2.1: when the client was registered (seconds since the epoch)'),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .loose()
  .describe('RFC 7591 §2 client metadata (redirect_uris, grant_types, token_endpoint_auth_method, scope, ...) with these fields');
const withSecretSchema = clientSchema.extend({
  client_secret: z.string().optional().describe('Shown once: only its digest is stored'),
  client_secret_expires_at: z.number().optional().describe('RFC 7591 §3.2.1: 0, the secret does not expire by itself'),
});
const rotatedSchema = z.object({
  client_id: z.string(),
  client_secret: z.string().describe('Shown once: only its digest is stored'),
  client_secret_expires_at: z.literal(0),
  previous_secret_expires_at: z.string().nullable().describe('Until when the replaced secret keeps working (CLIENT_SECRET_GRACE_PERIOD)'),
});
const clientRoleSchema = z.object({ role_id: z.string(), role: z.string(), created_at: z.string() });
const roleParams = z.object({ id: z.string().max(100), role_id: z.string().max(100) });

function clientView(c: ManagedClient) {
  return {
    ...c.metadata,
    client_id: c.clientId,
    has_secret: c.hasSecret,
    previous_secret_expires_at: c.previousSecretExpiresAt?.toISOString() ?? null,
    client_id_issued_at: Math.floor(c.createdAt.getTime() / 1000),
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

function withSecret(reply: FastifyReply, client: ManagedClient, secret: string | undefined) {
  if (secret === undefined) return clientView(client);
  reply.header('cache-control', 'no-store');
  return { ...clientView(client), client_secret: secret, client_secret_expires_at: 0 };
}

export async function clientRoutes(fastify: FastifyInstance, options: { clientAdmin: ClientManagement }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { clientAdmin } = options;

  app.get(
    '/api/auth/clients/',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'List clients, newest first (search matches the client id or client_name)',
        querystring: listQuery.extend({ search: z.string().max(100).optional() }),
        response: { 200: pageSchema(clientSchema), ...errors },
      },
    },
    async (request) => {
      const page = await clientAdmin.listClients(request.query);
      return { items: page.items.map(clientView), next_cursor: page.next_cursor };
    },
  );
  app.post(
    '/api/auth/clients/',
    {
      config: { permission },
      attachValidation: true,
      schema: {
        tags,
        summary: 'Register a client (RFC 7591 metadata); a confidential client without client_secret gets one, shown once',
        body: clientInputSchema,
        response: { 201: withSecretSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { client, clientSecret } = await clientAdmin.createClient(request.body as unknown, actorOf(request));
      return reply.code(201).send(withSecret(reply, client, clientSecret));
    },
  );
  app.get(
    '/api/auth/clients/:id/',
    { config: { permission }, schema: { tags, summary: 'Show a client', params: idParams, response: { 200: clientSchema, ...errors } } },
    async (request) => clientView(await clientAdmin.getClient(request.params.id)),
  );
  app.put(
    '/api/auth/clients/:id/',
    {
      config: { permission },
      attachValidation: true,
      schema: {
        tags,
        summary: 'Replace a client\'s metadata (not its id or secret: rotate with POST .../secret/)',
        params: idParams,
        body: clientUpdateSchema,
        response: { 200: withSecretSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { client, clientSecret } = await clientAdmin.updateClient(String(request.params.id), request.body as unknown, actorOf(request));
      return withSecret(reply, client, clientSecret);
    },
  );
  app.delete(
    '/api/auth/clients/:id/',
    {
      config: { permission },
      schema: { tags, summary: 'Delete a client: its grants and tokens are revoked, its roles removed', params: idParams, response: { 204: z.null(), ...errors } },
    },
    async (request, reply) => {
      await clientAdmin.deleteClient(request.params.id, actorOf(request));
      return reply.code(204).send(null);
    },
  );
  app.post(
    '/api/auth/clients/:id/secret/',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'Rotate the secret: the new one is shown once; the old one keeps working for CLIENT_SECRET_GRACE_PERIOD',
        params: idParams,
        response: { 200: rotatedSchema, ...errors },
      },
    },
    async (request, reply) => {
      const rotated = await clientAdmin.rotateClientSecret(request.params.id, actorOf(request));
      reply.header('cache-control', 'no-store');
      return {
        client_id: rotated.client.clientId,
        client_secret: rotated.clientSecret,
        client_secret_expires_at: 0 as const,
        previous_secret_expires_at: rotated.previousSecretExpiresAt?.toISOString() ?? null,
      };
    },
  );

  // ---- a service account's roles (through the rbac write path: no escalation)
  app.get(
    '/api/auth/clients/:id/roles/',
    { config: { permission }, schema: { tags, summary: "A client's roles (service account)", params: idParams, response: { 200: pageSchema(clientRoleSchema), ...errors } } },
    async (request) => ({
      items: (await clientAdmin.listClientRoles(request.params.id)).map((r) => ({ role_id: r.roleId, role: r.role, created_at: r.createdAt.toISOString() })),
      next_cursor: null,
    }),
  );
  app.post(
    '/api/auth/clients/:id/roles/',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'Give a client a role (201; 200 when it held it already); only roles you could hold all of',
        params: idParams,
        body: z.object({ role: z.string().min(1).max(100) }).strict(),
        response: { 200: z.object({ role: z.string(), assigned: z.boolean() }), 201: z.object({ role: z.string(), assigned: z.boolean() }), ...errors },
      },
    },
    async (request, reply) => {
      const assigned = await clientAdmin.assignClientRole(request.params.id, request.body.role, actorOf(request));
      return reply.code(assigned ? 201 : 200).send({ role: request.body.role, assigned });
    },
  );
  app.delete(
    '/api/auth/clients/:id/roles/:role_id/',
    { config: { permission }, schema: { tags, summary: "Take a role from a client", params: roleParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await clientAdmin.unassignClientRole(request.params.id, request.params.role_id, actorOf(request));
      return reply.code(204).send(null);
    },
  );
}
