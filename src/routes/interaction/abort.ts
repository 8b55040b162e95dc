/** POST /interaction/:uid/abort: the user cancels; the client gets `access_denied` (RFC 6749 §4.1.2.1). */
import type { FastifyInstance } from 'fastify';
import type { InteractionContext } from './context.js';

export function abortRoutes(app: FastifyInstance, ctx: InteractionContext): void {
  app.post('/interaction/:uid/abort', async (request, reply) => {
    const details = await ctx.loadForm(request, reply);
    if (!details) return reply;
    return ctx.finish(request, reply, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
  });
}
