/**
 * One error handler for the JSON APIs: `{error, message}` with a stable code. 5xx are masked (the cause
 * goes to the log with the request id, never to the client); validation problems name the field.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { ZodError } from 'zod';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../errors/unavailable.js';
import { AppError } from '../errors/index.js';

const statusCodes: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
};

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError | ZodError, request, reply) => {
    if (isDatabaseUnavailable(err)) {
      request.log.warn({ err }, 'database unavailable');
      return reply
        .code(503)
        .header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS))
        .send({ error: 'service_unavailable', message: 'the service is temporarily unavailable; retry later' });
    }
    if (err instanceof AppError) {
      if (!err.expose) request.log.error({ err }, 'request failed');
      // RFC 6585 §4 / RFC 9110 §10.2.3: a 429 says when to come back.
      if (err.status === 429 && typeof err.extra.retry_after === 'number') reply.header('retry-after', String(err.extra.retry_after));
      return reply.code(err.status).send({
        error: err.expose ? err.code : 'internal_error',
        message: err.expose ? err.message : 'internal error',
        ...(err.expose ? err.extra : {}),
      });
    }
    if (err instanceof ZodError) {
      const first = err.issues[0];
      return reply.code(400).send({
        error: 'invalid_request',
        message: first ? `${first.path.join('.') || 'body'}: ${first.message}` : 'invalid request',
      });
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return reply.code(500).send({ error: 'internal_error', message: 'internal error' });
    }
    const code = statusCodes[status] ?? 'invalid_request';
    // Fastify's own 4xx messages (body too large, bad JSON, schema validation) carry no secrets.
    return reply.code(status).send({ error: code, message: err.message });
  });

  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` }));
}
