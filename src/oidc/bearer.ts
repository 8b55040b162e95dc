/**
 * Bearer strategies for access tokens the OIDC provider issued:
 * - opaque tokens (authorization code / refresh / device flows, and client credentials) are looked up
 *   through the provider's models, so expiry and revocation (grant tombstones) are honoured;
 * - JWT access tokens (issued for a registered resource server) are verified against the provider's own
 *   keys and must name this service's API audience. They are stateless: revocation takes effect when they
 *   expire (ACCESS_TOKEN_TTL), which is why they are short-lived.
 */
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { BearerStrategy, Principal } from '../plugins/authenticate.js';
import { FIRST_PARTY_CLIENT_ID } from '../services/access-tokens.js';
import type { ProviderHost } from './provider-host.js';

const scopesOf = (scope: unknown) => new Set(typeof scope === 'string' && scope ? scope.split(' ') : []);

export function oidcOpaqueTokenStrategy(host: ProviderHost): BearerStrategy {
  return {
    name: 'oidc-opaque',
    async verify(token) {
      if (token.includes('.')) return undefined;
      const { AccessToken, ClientCredentials } = host.provider;
      const at = await AccessToken.find(token);
      if (at && !at.isExpired) {
        return {
          kind: 'user',
          userId: at.accountId,
          clientId: at.clientId,
          scopes: scopesOf(at.scope),
          sessionId: at.sid,
          via: 'oidc-opaque',
          audience: at.aud,
        } satisfies Principal;
      }
      const cc = await ClientCredentials.find(token);
      if (cc && !cc.isExpired) {
        return { kind: 'client', clientId: cc.clientId, scopes: scopesOf(cc.scope), via: 'oidc-opaque', audience: cc.aud } satisfies Principal;
      }
      return undefined;
    },
  };
}

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
          audience: payload.aud,
        };
        return { principal, exp: payload.exp };
      } catch {
        return undefined;
      }
    },
  };
}
