/**
 * The one error handler. Routes, plugins and services throw (an AppError with a stable code, or anything
 * else); this renders the answer in the shape the route declares:
 *   config: { page: true }   → an HTML page in plain words (a browser followed a link or posted a form);
 *   config: { oauth: true }  → `{error, error_description}` (RFC 6749 §5.2), also for the provider's endpoints,
 *                              which are served as middleware and match no route (`oauthEndpoint`);
 *   otherwise                → `{error, message}` with a stable code, plus the error's extra fields.
 * Whatever the shape: 5xx are masked (the cause goes to the log with the request id, never to the client: no
 * stack trace, no SQL); a database that cannot answer is 503 with Retry-After (RFC 9110 §15.6.4); a 429 says
 * when to come back (RFC 6585 §4); the headers an AppError carries (WWW-Authenticate per RFC 6750 §3, Allow)
 * are sent with its answer.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../errors/unavailable.js';
import { AppError } from '../errors/index.js';
import { messagePage, sendPage } from '../views/page.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** An OAuth endpoint: errors are answered `{error, error_description}` (RFC 6749 §5.2). */
    oauth?: boolean;
  }
}

export interface ErrorHandlerOptions {
  /** Whether a request that matched no route is for an OAuth endpoint (the provider's, mounted as middleware). */
  oauthEndpoint?: ((request: FastifyRequest) => boolean) | undefined;
}

type Shape = 'page' | 'oauth' | 'json';

/** What is answered, before it is put in a shape. */
interface Answer {
  status: number;
  code: string;
  message: string;
  extra: Record<string, unknown>;
  headers: Record<string, string>;
  /** False when the cause is hidden (5xx): only a generic code and message are answered. */
  exposed: boolean;
}

/** The code of a framework error (bad JSON, body too large, schema validation) by its status. */
const codesByStatus: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
};

const hidden = (status: number): Answer => ({ status, code: 'internal_error', message: 'internal error', extra: {}, headers: {}, exposed: false });

function answerFor(err: unknown, request: FastifyRequest): Answer {
  if (isDatabaseUnavailable(err)) {
    request.log.warn({ err }, 'database unavailable');
    return {
      status: 503,
      code: 'service_unavailable',
      message: 'the service is temporarily unavailable; retry later',
      extra: {},
      headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
      exposed: true,
    };
  }
  if (err instanceof AppError) {
    if (!err.expose) {
      request.log.error({ err }, 'request failed');
      return hidden(err.status);
    }
    const headers: Record<string, string> = { ...err.headers };
    if (err.status === 429 && typeof err.extra.retry_after === 'number') headers['retry-after'] = String(err.extra.retry_after);
    return { status: err.status, code: err.code, message: err.message, extra: err.extra, headers, exposed: true };
  }
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const message = first ? `${first.path.join('.') || 'body'}: ${first.message}` : 'invalid request';
    return { status: 400, code: 'invalid_request', message, extra: {}, headers: {}, exposed: true };
  }
  const statusCode = (err as Partial<FastifyError> | undefined)?.statusCode;
  const status = typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500 ? statusCode : 500;
  if (status >= 500) {
    request.log.error({ err }, 'request failed');
    return hidden(500);
  }
  // Fastify's own 4xx messages (body too large, bad JSON, schema validation) carry no secrets.
  return { status, code: codesByStatus[status] ?? 'invalid_request', message: (err as Error).message, extra: {}, headers: {}, exposed: true };
}

function shapeOf(request: FastifyRequest, options: ErrorHandlerOptions): Shape {
  const config = request.routeOptions.config as { page?: boolean; oauth?: boolean } | undefined;
  if (config?.page === true) return 'page';
  if (config?.oauth === true) return 'oauth';
  if (request.routeOptions.url === undefined && options.oauthEndpoint?.(request)) return 'oauth';
  return 'json';
}

/** The RFC 6749 §5.2 code of an answer: ours where it is one, the server errors the protocol names otherwise. */
function oauthCode(answer: Answer): string {
  if (answer.status === 503) return 'temporarily_unavailable';
  if (!answer.exposed || answer.status >= 500) return 'server_error';
  return answer.code;
}

/** The page for an error, in plain words; what went wrong in detail is for the log, not the browser. */
function pageCopy(answer: Answer): { title: string; lines: string[] } {
  if (answer.status === 503) return { title: 'Temporarily unavailable', lines: ['The service cannot complete this request right now. Try again in a moment.'] };
  if (answer.status >= 500) return { title: 'Something went wrong', lines: ['The request could not be completed. Try again in a moment.'] };
  if (answer.status === 429) return { title: 'Too many attempts', lines: ['Wait a moment before you try again.'] };
  return { title: 'Request not understood', lines: ['The form was not valid. Go back and try again.'] };
}

function send(reply: FastifyReply, request: FastifyRequest, answer: Answer, shape: Shape) {
  reply.code(answer.status).headers(answer.headers);
  if (shape === 'page') {
    const { title, lines } = pageCopy(answer);
    return sendPage(reply, messagePage(answer.status, title, lines));
  }
  if (shape === 'oauth') {
    // RFC 6749 §5.2: a client that authenticated with the Authorization header is answered 401 with a
    // challenge in the scheme it used.
    const scheme = request.headers.authorization?.split(' ', 1)[0];
    if (answer.status === 401 && scheme && !reply.hasHeader('www-authenticate')) reply.header('www-authenticate', scheme);
    // RFC 6749 §5.1: answers of the token endpoints are not cached; errors neither.
    reply.header('cache-control', 'no-store');
    return reply.send({ error: oauthCode(answer), error_description: answer.message, ...answer.extra });
  }
  return reply.send({ error: answer.code, message: answer.message, ...answer.extra });
}

export function registerErrorHandler(app: FastifyInstance, options: ErrorHandlerOptions = {}): void {
  app.setErrorHandler((err: unknown, request, reply) => send(reply, request, answerFor(err, request), shapeOf(request, options)));
  app.setNotFoundHandler((request) => {
    throw new AppError('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`);
  });
}
