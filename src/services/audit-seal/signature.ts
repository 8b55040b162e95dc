/**
 * Seal signatures: an ES256 JWS (RFC 7515 compact serialization) over the canonical seal body, made with
 * the dedicated audit key. Verification needs only the public JWK, so a third party can check a seal.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { canonicalJson, type SealBody } from './canonical.js';

/** The JWS `typ` of a seal signature, so it can never be mistaken for a token. */
export const SEAL_JWS_TYPE = 'keryu-audit-seal';

export async function signSeal(body: SealBody, privateJwk: JsonWebKey & { kid: string }): Promise<string> {
  const key = createPrivateKey({ key: privateJwk, format: 'jwk' });
  return new CompactSign(new TextEncoder().encode(canonicalJson(body))).setProtectedHeader({ alg: 'ES256', kid: privateJwk.kid, typ: SEAL_JWS_TYPE }).sign(key);
}

/** Public keys by kid, from a JWKS document (`{keys: [...]}`). */
export function verificationKeys(jwks: { keys: Array<Record<string, unknown>> }): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const jwk of jwks.keys) {
    if (typeof jwk.kid !== 'string' || jwk.kty !== 'EC' || jwk.crv !== 'P-256') continue;
    keys.set(jwk.kid, createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as JsonWebKey, format: 'jwk' }));
  }
  return keys;
}

/** Why a signature does not vouch for `body`, or undefined when it does. */
export async function checkSealSignature(signature: string, kid: string, body: SealBody, keys: Map<string, KeyObject>): Promise<string | undefined> {
  const key = keys.get(kid);
  if (!key) return `signed with key ${kid}, which is not an audit signing key`;
  try {
    const { payload, protectedHeader } = await compactVerify(signature, key, { algorithms: ['ES256'] });
    if (protectedHeader.typ !== SEAL_JWS_TYPE || protectedHeader.kid !== kid) return 'signature header does not match the seal';
    if (new TextDecoder().decode(payload) !== canonicalJson(body)) return 'the signed statement differs from the stored seal';
    return undefined;
  } catch {
    return 'signature does not verify';
  }
}
