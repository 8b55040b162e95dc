/**
 * GET /api/auth/alerts/: the alerts raised, newest first, with the state of each delivery. Needs auth.audit.read.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pageSchema } from '../../lib/pagination.js';
import { alertCatalogue, type AlertType } from '../../services/alerts/catalogue.js';
import type { AlertService } from '../../services/alerts/service.js';
import { errorSchema, forbiddenSchema, listQuery } from './schemas.js';

const alertTypes = Object.keys(alertCatalogue) as [AlertType, ...AlertType[]];

const deliverySchema = z.object({
  channel: z.enum(['webhook', 'email']),
  target: z.string(),
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  last_attempt_at: z.string().nullable(),
  next_attempt_at: z.string().nullable(),
  delivered_at: z.string().nullable(),
  last_error: z.string().nullable(),
});

const alertSchema = z.object({
  id: z.uuid(),
  type: z.string(),
  severity: z.enum(['low', 'medium', 'high', 'critical']),
  at: z.string(),
  summary: z.string(),
  details: z.record(z.string(), z.unknown()),
  events: z.array(z.string()),
  deliveries: z.array(deliverySchema),
});

export async function alertRoutes(fastify: FastifyInstance, options: { alerts: AlertService }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/api/auth/alerts/',
    {
      config: { permission: 'auth.audit.read' },
      schema: {
        tags: ['alerts'],
        summary: 'List security alerts (newest first) with their delivery state and attempts',
        querystring: listQuery.extend({ type: z.enum(alertTypes).optional() }),
        response: { 200: pageSchema(alertSchema), 400: errorSchema, 401: errorSchema, 403: forbiddenSchema },
      },
    },
    async (request) => options.alerts.list(request.query),
  );
}
