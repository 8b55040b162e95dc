/**
 * RFC 7662 token introspection for the tokens the first-party auth API issues (session access tokens and
 * personal tokens). oidc-provider's own endpoint (/oidc/token/introspection) only knows the tokens the
 * provider stored, and has no seam for foreign ones, so relying services introspect ours here. Callers
 * authenticate as a registered confidential client (HTTP Basic, client_secret_basic); the body is
 * form-encoded as the RFC requires (its own encapsulated parser, so the JSON API stays JSON-only).
 * @see RFC 7662 §2
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { constantTimeEqual, hmacDigest } from '../../lib/crypto.js';
import type { ClientQueries } from '../../queries/clients.js';
import type { SessionService } from '../../services/sessions.js';

function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = header ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header) : null;
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    return { id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')), secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')) };
  } catch {
    return undefined;
  }
}

export async function introspectionRoutes(parent: FastifyInstance, deps: { sessions: SessionService; clients: ClientQueries; secretKey: Buffer }): Promise<void> {
  const app = parent.withTypeProvider<ZodTypeProvider>();
  await app.register(formbody, { bodyLimit: 8 * 1024 });

  app.post(
    '/api/auth/introspect/',
    {
      schema: {
        tags: ['auth'],
        summary: 'RFC 7662 introspection of first-party access tokens and personal tokens (client_secret_basic)',
        consumes: ['application/x-www-form-urlencoded'],
        body: z.object({ token: z.string().max(4096), token_type_hint: z.string().max(50).optional() }),
      },
    },
    async (request, reply) => {
      const credentials = basicCredentials(request.headers.authorization);
      const digest = credentials && !credentials.id.includes('\u0000') ? await deps.clients.findClientSecretDigestById(credentials.id) : undefined;
      if (!credentials || !digest || !constantTimeEqual(digest, hmacDigest(deps.secretKey, credentials.secret))) {
        return reply.code(401).header('www-authenticate', 'Basic realm="keryu"').send({ error: 'invalid_client', message: 'client authentication failed' });
      }
      const result = await deps.sessions.introspect(request.body.token);
      return reply.header('cache-control', 'no-store').send(result);
    },
  );
}
