/**
 * Probes for orchestrators, on the main port at paths that never move:
 * - `/healthz` (startup, liveness): the process is up and its event loop answers. It never touches the
 *   database, so a database blip makes replicas unready, not restarted.
 * - `/readyz` (readiness): 200 `{"status":"ready"}`, or 503 `{"status":"unready","failing":[...]}` naming
 *   the checks that fail (database, migrations, keys, draining).
 */
import type { FastifyInstance } from 'fastify';
import type { Readiness } from '../services/readiness.js';

export async function healthRoutes(app: FastifyInstance, deps: { readiness: Readiness }): Promise<void> {
  app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    const report = await deps.readiness.evaluate();
    if (report.ready) return reply.send({ status: 'ready' });
    return reply.code(503).send({ status: 'unready', failing: report.failing });
  });
}
