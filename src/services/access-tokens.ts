/**
 * Access tokens of first-party sessions: JWTs (RFC 9068 `at+jwt`) signed with the provider's current
 * ES256 key, so relying services verify them from the JWKS like any other access token. They name
 * `client_id` FIRST_PARTY_CLIENT_ID and carry the session id as `sid`; the bearer strategy checks that
 * session on every request, so a revoked session's tokens stop working at once.
 * @see RFC 9068
 */
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { randomToken } from '../lib/crypto.js';
import type { PrivateJwk } from './signing-keys.js';

/** The `client_id` of tokens this API issues; the OIDC JWT strategy leaves them to the session strategy. */
export const FIRST_PARTY_CLIENT_ID = 'urn:keryu:first-party';

export interface AccessTokenKeys {
  /** The private key that signs now (ES256). */
  signingKey(): PrivateJwk;
  /** The published public keys (verification accepts every published key, so rotation is seamless). */
  publicJwks(): { keys: Array<Record<string, unknown>> };
}

export interface FirstPartyClaims extends JWTPayload {
  sub: string;
  sid: string;
  client_id: string;
  scope?: string;
}

export function createAccessTokenIssuer(deps: { keys: AccessTokenKeys; issuer: string; audience: string }) {
  const imported = new Map<string, ReturnType<typeof importJWK>>();
  let jwks: { source: object; set: ReturnType<typeof createLocalJWKSet> } | undefined;

  function keyFor(jwk: PrivateJwk) {
    let key = imported.get(jwk.kid);
    if (!key) {
      key = importJWK(jwk, jwk.alg);
      imported.set(jwk.kid, key);
    }
    return key;
  }

  return {
    async sign(claims: { sub: string; sid: string; scope?: string | undefined }, ttlSeconds: number, now: Date): Promise<string> {
      const jwk = deps.keys.signingKey();
      const iat = Math.floor(now.getTime() / 1000);
      return new SignJWT({ client_id: FIRST_PARTY_CLIENT_ID, sid: claims.sid, ...(claims.scope ? { scope: claims.scope } : {}) })
        .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'at+jwt' })
        .setIssuer(deps.issuer)
        .setAudience(deps.audience)
        .setSubject(claims.sub)
        .setJti(randomToken(16))
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttlSeconds)
        .sign(await keyFor(jwk));
    },

    /** The claims of a valid first-party access token, or undefined (not ours, bad signature, expired). */
    async verify(token: string, now: Date): Promise<FirstPartyClaims | undefined> {
      const published = deps.keys.publicJwks();
      if (jwks?.source !== published) jwks = { source: published, set: createLocalJWKSet(published) };
      try {
        const { payload } = await jwtVerify(token, jwks.set, {
          issuer: deps.issuer,
          audience: deps.audience,
          typ: 'at+jwt',
          currentDate: now,
        });
        if (payload.client_id !== FIRST_PARTY_CLIENT_ID || typeof payload.sid !== 'string' || typeof payload.sub !== 'string') return undefined;
        return payload as FirstPartyClaims;
      } catch {
        return undefined;
      }
    },
  };
}
export type AccessTokenIssuer = ReturnType<typeof createAccessTokenIssuer>;
