/**
 * The bearer strategy for access tokens the OIDC provider issued for this service's own API: JWTs (the API
 * is a built-in resource server, `<issuer origin>/api`, see oidc/provider.ts) verified against the
 * provider's keys, naming that audience. A token a relying party holds for userinfo or for another
 * resource is refused here, so no relying party can call the management APIs with its users' tokens
 * (confused deputy). They are stateless: revocation takes effect when they expire (ACCESS_TOKEN_TTL, 10
 * minutes by default). First-party session tokens are checked against their session instead.
 */
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { BearerStrategy, Principal } from '../plugins/authenticate.js';
import { FIRST_PARTY_CLIENT_ID } from '../services/access-tokens.js';
import type { ProviderHost } from './provider-host.js';

const scopesOf = (scope: unknown) => new Set(typeof scope === 'string' && scope ? scope.split(' ') : []);

/**
 * Verified JWTs are remembered until they expire (bounded): verifying an ES256 signature costs far more than
 * answering a decision from the cache. The outcome is the same as verifying again, since a JWT is stateless.
 */
const MAX_VERIFIED_JWTS = 10_000;

export function oidcJwtAccessTokenStrategy(
  host: ProviderHost,
  options: { issuer: string; audience: string },
): BearerStrategy & { verifyUncached(token: string): Promise<{ principal: Principal; exp: number | undefined } | undefined> } {
  const verified = new Map<string, { principal: Principal; exp: number }>();
  return {
    name: 'oidc-jwt',
    async verify(token) {
      if (token.split('.').length !== 3) return undefined;
      const hit = verified.get(token);
      if (hit) {
        if (hit.exp > Date.now() / 1000) return hit.principal;
        verified.delete(token);
      }
      const principal = await this.verifyUncached(token);
      if (principal?.exp !== undefined) {
        if (verified.size >= MAX_VERIFIED_JWTS) verified.delete(verified.keys().next().value as string);
        verified.set(token, { principal: principal.principal, exp: principal.exp });
      }
      return principal?.principal;
    },
    async verifyUncached(token: string): Promise<{ principal: Principal; exp: number | undefined } | undefined> {
      try {
        const { payload } = await jwtVerify(token, createLocalJWKSet(host.publicJwks()), {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
        });
        // First-party session tokens are the session strategy's: it checks their session on every use.
        if (typeof payload.client_id !== 'string' || payload.client_id === FIRST_PARTY_CLIENT_ID) return undefined;
        const isUser = typeof payload.sub === 'string' && payload.sub !== payload.client_id;
        const principal: Principal = {
          kind: isUser ? 'user' : 'client',
          userId: isUser ? payload.sub : undefined,
          clientId: payload.client_id,
          scopes: scopesOf(payload.scope),
          sessionId: typeof payload.sid === 'string' ? payload.sid : undefined,
          via: 'oidc-jwt',
          amr: Array.isArray(payload.amr) ? payload.amr.filter((m): m is string => typeof m === 'string') : undefined,
          audience: payload.aud,
        };
        return { principal, exp: payload.exp };
      } catch {
        return undefined;
      }
    },
  };
}
