/**
 * `request.requestContext`: the one place a Fastify request becomes a RequestContext (address, User-Agent,
 * request id). A getter, so it is computed only by the handlers that read it and always sees the address
 * after the forwarded-header rewrite.
 */
import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../lib/request-context.js';

declare module 'fastify' {
  interface FastifyRequest {
    readonly requestContext: RequestContext;
  }
}

export function registerRequestContext(app: FastifyInstance): void {
  app.decorateRequest('requestContext', {
    getter(): RequestContext {
      return { ip: this.ip, userAgent: this.headers['user-agent'], requestId: this.id };
    },
  });
}
