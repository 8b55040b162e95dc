/**
 * The bearer strategy for access tokens the OIDC provider issued for this service's own API: JWTs (the API
 * is a built-in resource server, `<issuer origin>/api`, see oidc/provider.ts) verified against the
 * provider's keys, naming that audience. A token a relying party holds for userinfo or for another
 * resource is refused here, so no relying party can call the management APIs with its users' tokens
 * (confused deputy). A token revoked at the revocation endpoint, or whose grant was revoked, is refused on
 * every replica: revocation is checked on every request, cached signature check or not (against each
 * replica's revocation cache, kept by notifications: services/revoked-token-cache.ts).
 * First-party session tokens are checked against their session instead: this strategy leaves them alone
 * without verifying them, so it can be tried first at no cost to them.
 */
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { BearerStrategy, Principal } from '../plugins/authenticate.js';
import type { RevocableToken } from '../queries/revoked-tokens.js';
import { FIRST_PARTY_CLIENT_ID } from '../services/access-tokens.js';
import type { ProviderHost } from './provider-host.js';
import { GRANT_ID_CLAIM } from './token-endpoints.js';

interface VerifiedJwt {
  principal: Principal;
  exp: number | undefined;
  revocable: RevocableToken;
}

/**
 * Whether the token claims to be a first-party session token (unverified: only to skip it; the session strategy
 * verifies it, and a token that lies about its client fails there).
 */
function claimsFirstParty(token: string): boolean {
  try {
    return decodeJwt(token).client_id === FIRST_PARTY_CLIENT_ID;
  } catch {
    return false;
  }
}

const scopesOf = (scope: unknown) => new Set(typeof scope === 'string' && scope ? scope.split(' ') : []);

/**
 * Verified JWTs are remembered until they expire (bounded): verifying an ES256 signature costs far more than
 * answering a decision from the cache. Only the signature check is cached; revocation is checked every time.
 */
const MAX_VERIFIED_JWTS = 10_000;

export function oidcJwtAccessTokenStrategy(
  host: ProviderHost,
  options: { issuer: string; audience: string; isRevoked(token: RevocableToken): Promise<boolean> },
): BearerStrategy & { verifyUncached(token: string): Promise<VerifiedJwt | undefined> } {
  const verified = new Map<string, VerifiedJwt & { exp: number }>();
  const unlessRevoked = async (found: VerifiedJwt) => ((await options.isRevoked(found.revocable)) ? undefined : found.principal);
  return {
    name: 'oidc-jwt',
    async verify(token) {
      const hit = verified.get(token);
      if (hit) {
        if (hit.exp > Date.now() / 1000) return unlessRevoked(hit);
        verified.delete(token);
      }
      if (token.split('.').length !== 3 || claimsFirstParty(token)) return undefined;
      const found = await this.verifyUncached(token);
      if (!found) return undefined;
      if (found.exp !== undefined) {
        if (verified.size >= MAX_VERIFIED_JWTS) verified.delete(verified.keys().next().value as string);
        verified.set(token, { ...found, exp: found.exp });
      }
      return unlessRevoked(found);
    },
    async verifyUncached(token: string): Promise<VerifiedJwt | undefined> {
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
        const grantId = payload[GRANT_ID_CLAIM];
        return { principal, exp: payload.exp, revocable: { jti: payload.jti ?? '', grantId: typeof grantId === 'string' ? grantId : undefined } };
      } catch {
        return undefined;
      }
    },
  };
}
