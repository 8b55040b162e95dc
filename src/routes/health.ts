/** Liveness (the process answers) and readiness (the database answers) for orchestrators. */
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../db/client.js';

export async function healthRoutes(app: FastifyInstance, deps: { db: Db; isShuttingDown: () => boolean }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (deps.isShuttingDown()) return reply.code(503).send({ status: 'shutting_down' });
    try {
      await deps.db.execute(sql`select 1`);
      return { status: 'ok' };
    } catch (err) {
      _request.log.warn({ err }, 'readiness check failed');
      return reply.code(503).send({ status: 'unavailable' });
    }
  });
}
