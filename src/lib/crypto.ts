/**
 * The cryptographic primitives the service uses, in one place: key derivation from the root secret,
 * authenticated encryption at rest, keyed digests of high-entropy secrets, and random tokens.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Purpose-bound 32-byte key derived from the root secret (RFC 5869), so one secret never serves two uses. */
export function deriveKey(rootSecret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', rootSecret, 'keryu-auth', purpose, 32));
}

/** AES-256-GCM; output is `v1.<iv>.<tag>.<ciphertext>` in base64url. `aad` binds the ciphertext to its row. */
export function encrypt(key: Buffer, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
}

export function decrypt(key: Buffer, sealed: string, aad: string): string {
  const [version, iv, tag, ciphertext] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('unsupported ciphertext format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
}

/**
 * Keyed digest (HMAC-SHA-256) for high-entropy secrets stored only as digests: client secrets, one-time
 * codes, and every token at rest (`TokenDigest` below). Keyed, so that a copy of a table cannot be checked
 * offline against guesses without the server secret; not a slow password hash, which would add nothing
 * against guessing a 256-bit value and would cap token-endpoint throughput.
 */
export function hmacDigest(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}

/** Plain SHA-256, for what is not a stored secret (rate-limit keys, CSRF inputs); never for a token at rest. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/**
 * Digests of the tokens this server issues and stores only as digests: refresh tokens, personal tokens,
 * login challenge ids, password reset tokens and security report tokens. New rows store `stored(value)`
 * (keyed); a lookup matches any of `candidates(value)` in one `token_hash in (...)` query.
 *
 * Migration: rows written before the keyed digest hold the plain SHA-256 of the value, so `candidates` also
 * names it and those tokens keep working. Nothing renews a legacy row except a refresh rotation (its
 * successor is keyed); the others age out with their expiry. The longest-lived are personal tokens
 * (PERSONAL_TOKEN_MAX_TTL, 365 days by default); the rest are bounded by REFRESH_TOKEN_ABSOLUTE_TTL (90
 * days), security reports (7 days), reset links and challenges (minutes). Remove the `sha256(value)`
 * candidate here once max(PERSONAL_TOKEN_MAX_TTL, REFRESH_TOKEN_ABSOLUTE_TTL) has passed since the release
 * that introduced the keyed digest was deployed; it is the only place that accepts a legacy digest.
 */
export interface TokenDigest {
  /** The digest a new token's row stores. */
  stored(value: string): string;
  /** Every digest a row of this token may hold: the keyed one, then the legacy plain SHA-256. */
  candidates(value: string): string[];
}

export function createTokenDigest(key: Buffer): TokenDigest {
  return {
    stored: (value) => hmacDigest(key, value),
    candidates: (value) => [hmacDigest(key, value), sha256(value)],
  };
}

/** Constant-time equality of two strings (lengths are compared through their digests, not early-exit). */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

/** A random token with `bytes` bytes of entropy (default 32 = 256 bits), base64url. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
