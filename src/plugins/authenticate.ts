/**
 * Bearer authentication for the JSON APIs. A token is tried against an ordered list of strategies (OIDC
 * access tokens, first-party session tokens, personal API tokens, ...); the first that recognizes it
 * yields the principal. Routes opt in with `preHandler: app.authenticate`.
 * Missing token → 401 `unauthorized`; unrecognized, expired or revoked token → 401 `invalid_token`; both
 * thrown with their Bearer challenge, rendered by the error handler.
 * @see RFC 6750 §3 (WWW-Authenticate)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors/index.js';

export interface Principal {
  kind: 'user' | 'client';
  /** The user acting, when a user. */
  userId?: string | undefined;
  /** The client the token was issued to (the service account itself when kind is 'client'). */
  clientId?: string | undefined;
  scopes: ReadonlySet<string>;
  /** The session the token belongs to (first-party session id or OIDC sid), for "current" markers and logout. */
  sessionId?: string | undefined;
  /** Which strategy recognized the token. */
  via: string;
  /** How the user signed in (RFC 8176 `amr`), when the token records it. */
  amr?: readonly string[] | undefined;
  /** The resource (audience) the token was issued for, when it names one. */
  audience?: string | readonly string[] | undefined;
}

export interface BearerStrategy {
  readonly name: string;
  /** Returns the principal, or undefined when the token is not one of this strategy's (or is dead). */
  verify(token: string, request: FastifyRequest): Promise<Principal | undefined>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyInstance {
    authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
    bearerStrategies: BearerStrategy[];
  }
}

/** Tokens are base64url/JWT characters; anything longer than this is not ours. */
const MAX_TOKEN_LENGTH = 4096;

/** RFC 6750 §3.1: a request without a token gets the bare challenge, a bad token names `invalid_token`. */
function unauthorized(error: 'unauthorized' | 'invalid_token', message: string): AppError {
  const challenge = error === 'invalid_token' ? 'Bearer error="invalid_token"' : 'Bearer';
  return new AppError(error, message, { headers: { 'www-authenticate': challenge } });
}

async function authenticatePlugin(app: FastifyInstance, options: { strategies: BearerStrategy[] }): Promise<void> {
  app.decorate('bearerStrategies', options.strategies);
  app.decorateRequest('principal', undefined);
  app.decorate('authenticate', async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    const match = header ? /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header) : null;
    if (!header) throw unauthorized('unauthorized', 'a bearer token is required');
    if (!match?.[1] || match[1].length > MAX_TOKEN_LENGTH) throw unauthorized('invalid_token', 'malformed bearer token');
    for (const strategy of app.bearerStrategies) {
      const principal = await strategy.verify(match[1], request);
      if (principal) {
        request.principal = principal;
        return;
      }
    }
    throw unauthorized('invalid_token', 'the token is invalid, expired or revoked');
  });
}

export const authenticate = fp(authenticatePlugin, { name: 'keryu-authenticate' });
