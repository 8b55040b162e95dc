/**
 * The audit log API: read and export events (auth.audit.read), list seals (auth.audit.read), and the
 * public keys that verify seals (public, like any JWKS, so a third party can check an export).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pageQuerySchema, pageSchema } from '../../lib/pagination.js';
import { actorOf } from '../../plugins/require-permission.js';
import { auditExportFile, auditExportFormats, auditFilterSchema, type AuditLogService } from '../../services/audit-log.js';
import type { AuditSealService } from '../../services/audit-seal/service.js';
import { errorSchema, forbiddenSchema, idParams } from './schemas.js';

const errors = { 400: errorSchema, 401: errorSchema, 403: forbiddenSchema, 404: errorSchema };

const auditItemSchema = z.object({
  id: z.string(),
  type: z.string(),
  outcome: z.enum(['success', 'failure']),
  at: z.string(),
  actor: z.object({ type: z.string(), id: z.string().nullable() }),
  subject: z.object({ type: z.string(), id: z.string().nullable() }).nullable(),
  client_id: z.string().nullable(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  request_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  seal: z.object({ id: z.number() }).nullable(),
});

const sealSchema = z.object({
  id: z.number(),
  sealed_at: z.string(),
  lower: z.tuple([z.number(), z.number()]),
  upper: z.tuple([z.number(), z.number()]),
  first_seq: z.number(),
  last_seq: z.number(),
  count: z.number(),
  digest: z.string(),
  previous_digest: z.string().nullable(),
  kid: z.string(),
  signature: z.string(),
});

const jwksSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

export async function auditRoutes(fastify: FastifyInstance, options: { auditLog: AuditLogService; seals: AuditSealService }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { auditLog, seals } = options;
  const tags = ['audit'];
  const config = { permission: 'auth.audit.read' } as const;
  // Audit data is for the caller only: never kept by a shared cache (this hook covers these routes only).
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });

  app.get(
    '/api/auth/audit/',
    {
      config,
      schema: {
        tags,
        summary: 'Audit events, newest first; filters: type (repeatable, or a prefix such as login.*), outcome, actor_id, subject_id, client_id, ip, from, to (RFC 3339)',
        querystring: pageQuerySchema.extend(auditFilterSchema.shape),
        response: { 200: pageSchema(auditItemSchema), ...errors },
      },
    },
    async (request) => {
      const actor = actorOf(request);
      return auditLog.listEvents(request.query, { audit: actor.audit, context: actor.context });
    },
  );
  app.get(
    '/api/auth/audit/export/',
    {
      config,
      schema: {
        tags,
        summary: 'Every matching event, streamed as NDJSON (with the seals that verify them) or CSV; the same filters as the list',
        querystring: auditFilterSchema.extend({ format: z.enum(auditExportFormats).default('ndjson') }),
      },
    },
    async (request, reply) => {
      const { format, ...filters } = request.query;
      const actor = actorOf(request);
      const lines = await auditLog.exportEvents(filters, format, { audit: actor.audit, context: actor.context });
      const file = auditExportFile(format, new Date());
      return reply.type(file.contentType).header('content-disposition', `attachment; filename="${file.filename}"`).send(Readable.from(lines));
    },
  );
  app.get(
    '/api/auth/audit/seals/',
    { config, schema: { tags, summary: 'Seals of the audit log, newest first', querystring: pageQuerySchema, response: { 200: pageSchema(sealSchema), ...errors } } },
    async (request) => seals.listSeals(request.query),
  );
  app.get(
    '/api/auth/audit/keys/',
    { schema: { tags, summary: 'Public keys (JWKS) that verify audit seals', response: { 200: jwksSchema } } },
    async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(await seals.publicJwks()),
  );
  app.get(
    '/api/auth/audit/:id/',
    { config, schema: { tags, summary: 'One audit event', params: idParams, response: { 200: auditItemSchema, ...errors } } },
    async (request) => {
      const actor = actorOf(request);
      return auditLog.getEvent(request.params.id, { audit: actor.audit, context: actor.context });
    },
  );
}
