/**
 * GET /api/auth/compliance/: the compliance report (every check with status, evidence and references). Needs
 * auth.audit.read. Running it raises `compliance_failed` for failing checks (at most once a day per check).
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ComplianceService } from '../../services/compliance/service.js';
import { errorSchema, forbiddenSchema } from './schemas.js';

const checkSchema = z.object({
  id: z.string(),
  title: z.string(),
  status: z.enum(['pass', 'warn', 'fail']),
  evidence: z.record(z.string(), z.unknown()),
  references: z.object({ rfc9700: z.string().nullable(), nist_800_63b: z.string().nullable(), asvs_5_0: z.string().nullable() }),
});

const reportSchema = z.object({
  generated_at: z.string(),
  summary: z.object({ pass: z.number().int(), warn: z.number().int(), fail: z.number().int() }),
  checks: z.array(checkSchema),
});

export async function complianceRoutes(fastify: FastifyInstance, options: { compliance: ComplianceService }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/api/auth/compliance/',
    {
      config: { permission: 'auth.audit.read' },
      schema: {
        tags: ['compliance'],
        summary: 'Compliance report: configuration and data checked against RFC 9700, NIST SP 800-63B and OWASP ASVS 5.0',
        response: { 200: reportSchema, 401: errorSchema, 403: forbiddenSchema },
      },
    },
    async () => options.compliance.report(),
  );
}
