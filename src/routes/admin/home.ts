/** The console's home page: the pages this administrator may use, and nothing for anyone else (403). */
import type { FastifyInstance } from 'fastify';
import { ADMIN_CONSOLE, type AdminContext } from './context.js';

export async function adminHomeRoutes(app: FastifyInstance, deps: { context: AdminContext }): Promise<void> {
  const { context } = deps;
  app.get('/admin/', { config: { page: true, adminPermission: ADMIN_CONSOLE } }, async (request, reply) =>
    context.send(request, reply, 200, 'home', { title: 'Admin console', current: '/admin/' }),
  );
}
