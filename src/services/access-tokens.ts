/**
 * Access tokens of first-party sessions: JWTs (RFC 9068 `at+jwt`) signed with the provider's current
 * ES256 key, so relying services verify them from the JWKS like any other access token. They name
 * `client_id` FIRST_PARTY_CLIENT_ID and carry the session id as `sid`; the bearer strategy checks that
 * session on every request, so a revoked session's tokens stop working at once.
 * @see RFC 9068
 */
import { createPrivateKey, sign as signDigest, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
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
  const imported = new Map<string, KeyObject>();
  let jwks: { source: object; set: ReturnType<typeof createLocalJWKSet> } | undefined;

  function keyFor(jwk: PrivateJwk): KeyObject {
    let key = imported.get(jwk.kid);
    if (!key) {
      key = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
      imported.set(jwk.kid, key);
    }
    return key;
  }

  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

  return {
    async sign(claims: { sub: string; sid: string; scope?: string | undefined }, ttlSeconds: number, now: Date): Promise<string> {
      const jwk = deps.keys.signingKey();
      if (jwk.alg !== 'ES256') throw new Error(`first-party access tokens are signed with ES256, not ${jwk.alg}`);
      const iat = Math.floor(now.getTime() / 1000);
      const payload = {
        iss: deps.issuer,
        sub: claims.sub,
        aud: deps.audience,
        client_id: FIRST_PARTY_CLIENT_ID,
        sid: claims.sid,
        ...(claims.scope ? { scope: claims.scope } : {}),
        jti: randomToken(16),
        iat,
        exp: iat + ttlSeconds,
      };
      // RFC 7515 §5.1 with node:crypto directly: a synchronous ECDSA signature costs a fraction of WebCrypto's
      // asynchronous one, which matters at a thousand refreshes a second. `ieee-p1363` is JWS's r||s form (RFC 7518 §3.4).
      const input = `${b64({ alg: 'ES256', kid: jwk.kid, typ: 'at+jwt' })}.${b64(payload)}`;
      const signature = signDigest('sha256', Buffer.from(input), { key: keyFor(jwk), dsaEncoding: 'ieee-p1363' });
      return `${input}.${signature.toString('base64url')}`;
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
