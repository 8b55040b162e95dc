/**
 * Who a first-party bearer token speaks for: session access tokens (JWTs naming their session) and personal
 * tokens, checked against their row on every request, and RFC 7662 introspection of the same tokens.
 */
import { AppError } from '../../errors/index.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createAuthTokenQueries } from '../../queries/auth-tokens.js';
import { FIRST_PARTY_CLIENT_ID } from '../access-tokens.js';
import { effectiveExpiry, PERSONAL_TOKEN_PREFIX, TOUCH_INTERVAL_SECONDS, type SessionPrincipal, type SessionServiceDeps } from './model.js';

export function createTokenAuthentication(deps: SessionServiceDeps) {
  const { clock } = deps;
  const tokens = createAuthTokenQueries(deps.db);

  return {
    /**
     * Resolves a first-party access token to its session, by primary key on every request (no cache, so a
     * revocation applies at once on every replica). Use is recorded at most once a minute.
     */
    async authenticateAccessToken(token: string, context: RequestContext = {}): Promise<SessionPrincipal | undefined> {
      const now = clock();
      const claims = await deps.accessTokens().verify(token, now);
      if (!claims) return undefined;
      const state = await tokens.findSessionState(claims.sid);
      if (!state || state.kind !== 'session' || !state.isActive || state.userDisabled || state.userId !== claims.sub) return undefined;
      const expiry = effectiveExpiry(state);
      if (expiry && expiry <= now) throw new AppError('session_expired', 'the session has expired; sign in again', 401);
      if (!state.lastUsedAt || now.getTime() - state.lastUsedAt.getTime() >= TOUCH_INTERVAL_SECONDS * 1000 || (context.ip && context.ip !== state.ipAddress && !state.lastUsedAt)) {
        tokens.touchToken(state.id, now, context.ip, TOUCH_INTERVAL_SECONDS).catch((err: unknown) => deps.log.error({ err }, 'token use not recorded'));
      }
      return { userId: state.userId, sessionId: state.id, kind: 'session', scopes: [], amr: state.amr ?? [] };
    },

    /**
     * RFC 7662 introspection of what this API issues (session access tokens and personal tokens): active
     * only while the token is unexpired and its session or token is not revoked, so a relying service that
     * introspects sees a logout at once.
     */
    async introspect(token: string): Promise<Record<string, unknown>> {
      const now = clock();
      const inactive = { active: false };
      if (token.startsWith(PERSONAL_TOKEN_PREFIX)) {
        const row = await tokens.findPersonalTokenByDigests(deps.tokenDigest.candidates(token));
        if (!row || !row.isActive || row.userDisabled || (row.expiresAt && row.expiresAt <= now)) return inactive;
        return {
          active: true,
          token_type: 'Bearer',
          sub: row.userId,
          client_id: FIRST_PARTY_CLIENT_ID,
          scope: row.scopes.join(' ') || undefined,
          iat: Math.floor(row.createdAt.getTime() / 1000),
          exp: row.expiresAt ? Math.floor(row.expiresAt.getTime() / 1000) : undefined,
        };
      }
      if (token.split('.').length !== 3) return inactive;
      const claims = await deps.accessTokens().verify(token, now);
      if (!claims) return inactive;
      const state = await tokens.findSessionState(claims.sid);
      const expiry = state ? effectiveExpiry(state) : null;
      if (!state || state.kind !== 'session' || !state.isActive || state.userDisabled || state.userId !== claims.sub || (expiry && expiry <= now)) return inactive;
      return { active: true, token_type: 'Bearer', sub: claims.sub, sid: claims.sid, client_id: claims.client_id, iss: claims.iss, aud: claims.aud, iat: claims.iat, exp: claims.exp, jti: claims.jti };
    },

    async authenticatePersonalToken(token: string, context: RequestContext = {}): Promise<SessionPrincipal | undefined> {
      if (!token.startsWith(PERSONAL_TOKEN_PREFIX)) return undefined;
      const now = clock();
      const row = await tokens.findPersonalTokenByDigests(deps.tokenDigest.candidates(token));
      if (!row || !row.isActive || row.userDisabled || (row.expiresAt && row.expiresAt <= now)) return undefined;
      if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= TOUCH_INTERVAL_SECONDS * 1000) {
        tokens.touchToken(row.id, now, context.ip, TOUCH_INTERVAL_SECONDS).catch((err: unknown) => deps.log.error({ err }, 'token use not recorded'));
      }
      return { userId: row.userId, sessionId: row.id, kind: 'personal', scopes: row.scopes, amr: row.amr ?? [] };
    },
  };
}
