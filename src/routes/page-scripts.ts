/**
 * GET of the pages' one script (views/passkey-script.ts). Its path changes with its content, so it is
 * cached for a year and never revalidated (`immutable`, RFC 8246).
 */
import type { FastifyInstance } from 'fastify';
import { passkeyScript } from '../views/passkey-script.js';

export async function pageScriptRoutes(app: FastifyInstance): Promise<void> {
  app.get(passkeyScript.path, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .send(passkeyScript.body),
  );
}
