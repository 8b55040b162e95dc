/**
 * Bearer strategies for what the first-party auth API issues:
 * - session access tokens (JWTs with `client_id` urn:keryu:first-party): signature and expiry from the
 *   JWKS, then the session row by primary key on every request, so a logout or revocation is effective at
 *   once on every replica (one indexed read, no cache; use is recorded at most once a minute);
 * - personal API tokens (`kpat_...`): looked up by their SHA-256 digest.
 * An expired session answers 401 `session_expired` (thrown, rendered by the error handler).
 */
import type { SessionService } from '../services/sessions.js';
import type { BearerStrategy } from './authenticate.js';


export function firstPartySessionStrategy(sessions: SessionService): BearerStrategy {
  return {
    name: 'first-party-session',
    async verify(token, request) {
      if (token.split('.').length !== 3) return undefined;
      const found = await sessions.authenticateAccessToken(token, request.requestContext);
      if (!found) return undefined;
      return { kind: 'user', userId: found.userId, scopes: new Set(found.scopes), sessionId: found.sessionId, via: 'first-party-session', amr: found.amr };
    },
  };
}

export function personalTokenStrategy(sessions: SessionService): BearerStrategy {
  return {
    name: 'personal-token',
    async verify(token, request) {
      const found = await sessions.authenticatePersonalToken(token, request.requestContext);
      if (!found) return undefined;
      return { kind: 'user', userId: found.userId, scopes: new Set(found.scopes), sessionId: found.sessionId, via: 'personal-token', amr: found.amr };
    },
  };
}
