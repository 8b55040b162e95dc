/**
 * Conventions every JSON API of the service follows (set up once, here):
 * - input validated with zod schemas declared on the route (fastify-type-provider-zod), documented in the
 *   OpenAPI document served at /docs/json;
 * - errors are `{error, message}` (thrown, rendered by error-handler.ts);
 * - a method an API path does not support answers 405 with `Allow`, not 404.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { AppError } from '../errors/index.js';

export async function registerApiConventions(app: FastifyInstance, options: { version: string }): Promise<void> {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'keryu-auth API', version: options.version, description: 'First-party authentication, sessions, tokens and authorization APIs.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
    // Only our JSON APIs belong in the document (not pages, health or the provider's own endpoints).
    hideUntagged: true,
  });
  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());

  const methodsByUrl = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/')) return;
    const methods = methodsByUrl.get(route.url) ?? new Set<string>();
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) methods.add(m);
    methodsByUrl.set(route.url, methods);
  });
  // Registered last (onReady is too late to add routes), by calling the returned function.
  app.decorate('registerMethodNotAllowed', () => {
    const all = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
    for (const [url, methods] of methodsByUrl) {
      const allowed = [...methods].filter((m) => m !== 'HEAD' && m !== 'OPTIONS');
      const missing = all.filter((m) => !methods.has(m));
      if (!missing.length) continue;
      app.route({
        method: missing as never,
        url,
        schema: { hide: true },
        // RFC 9110 §15.5.6: a 405 names the methods the resource supports.
        handler: async (request) => {
          throw new AppError('method_not_allowed', `${request.method} is not supported here; use ${allowed.join(', ')}`, { status: 405, headers: { allow: allowed.join(', ') } });
        },
      });
    }
  });
}

declare module 'fastify' {
  interface FastifyInstance {
    registerMethodNotAllowed(): void;
  }
}
