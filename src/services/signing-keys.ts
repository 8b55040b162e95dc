/**
 * Signing keys: generated on first start, stored encrypted, shared by every replica, rotated by
 * `keryu keys rotate`. A rotated-in key is published (JWKS) for `rotationDelay` seconds before it signs,
 * so relying parties that cache JWKS know it first; the key it replaces stays published until every token
 * it signed has expired.
 */
import { createHash, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import type { Db } from '../db/client.js';
import { decrypt, encrypt } from '../lib/crypto.js';
import { FOREIGN_SECRET_MESSAGE, OperatorError } from '../errors/startup.js';
import { createSigningKeyQueries, type SigningKeyRow } from '../queries/signing-keys.js';
import type { AuditService } from './audit.js';

export const SIGNING_ALGORITHMS = ['RS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export interface PrivateJwk extends JsonWebKey {
  kid: string;
  alg: string;
  use: 'sig';
  key_ops?: string[];
}

/** RFC 7638 thumbprint, used as the kid so a key names itself. */
function thumbprint(jwk: JsonWebKey): string {
  const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

export function generateJwk(alg: SigningAlgorithm): PrivateJwk {
  const { privateKey } =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg, use: 'sig' };
}

/** The members a verifier needs; never a private one. */
export function publicPart(jwk: PrivateJwk): Record<string, unknown> {
  const { kty, crv, x, y, n, e, kid, alg, use } = jwk;
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e, kid, alg, use }).filter(([, v]) => v !== undefined));
}

type KeyState = Pick<SigningKeyRow, 'kid' | 'alg' | 'activatesAt' | 'createdAt'>;

export interface KeySet {
  /** Private keys for oidc-provider: per alg the signing key first, the others marked verify-only. */
  jwks: { keys: PrivateJwk[] };
  /** Changes whenever what is published or which key signs changes. */
  fingerprint: string;
}

export interface SigningKeyServiceDeps {
  db: Db;
  encryptionKey: Buffer;
  audit: AuditService;
  /** Longest lifetime of anything signed with these keys (ID tokens, JWT access tokens). */
  maxSignedTtlSeconds: number;
  rotationDelaySeconds: number;
  now?: () => Date;
}

export function createSigningKeyService(deps: SigningKeyServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const queries = createSigningKeyQueries(deps.db);

  function seal(jwk: PrivateJwk): string {
    return encrypt(deps.encryptionKey, JSON.stringify(jwk), `signing-key:${jwk.kid}`);
  }

  function unseal(row: SigningKeyRow): PrivateJwk {
    let plain: string;
    try {
      plain = decrypt(deps.encryptionKey, row.privateJwkEncrypted, `signing-key:${row.kid}`);
    } catch (err) {
      // AES-GCM authentication failed: the key was sealed under a key derived from a different secret.
      throw new OperatorError(FOREIGN_SECRET_MESSAGE, { cause: err });
    }
    return JSON.parse(plain) as PrivateJwk;
  }

  function rowsFor(activatesAt: Date) {
    return SIGNING_ALGORITHMS.map((alg) => {
      const jwk = generateJwk(alg);
      return { kid: jwk.kid, alg, publicJwk: publicPart(jwk), privateJwkEncrypted: seal(jwk), activatesAt };
    });
  }

  /**
   * Which key signs for each alg at `at`: among the activated keys, the one rotated in last. Not the one
   * activated last: a pending key superseded by a later rotation (say `--activate-in 0` after a scheduled
   * one) must never start signing, because its retirement was scheduled from the superseding key's
   * activation and it would be unpublished while its tokens are still valid.
   */
  function signingKidsAt(rows: KeyState[], at: Date): Set<string> {
    const best = new Map<string, KeyState>();
    for (const row of rows) {
      if (row.activatesAt > at) continue;
      const current = best.get(row.alg);
      const newer =
        !current ||
        row.createdAt > current.createdAt ||
        (row.createdAt.getTime() === current.createdAt.getTime() && row.activatesAt >= current.activatesAt);
      if (newer) best.set(row.alg, row);
    }
    return new Set([...best.values()].map((r) => r.kid));
  }

  function fingerprintOf(rows: KeyState[], at: Date): string {
    const signing = signingKidsAt(rows, at);
    return rows
      .map((r) => `${r.kid}:${signing.has(r.kid) ? 'sign' : 'verify'}`)
      .sort()
      .join(',');
  }

  return {
    /** Generates the first key set if there is none; safe when several replicas start at once. */
    async ensureSigningKeys(): Promise<boolean> {
      if ((await queries.countSigningKeys()) > 0) return false;
      const created = await deps.db.transaction(async (tx) => {
        const q = createSigningKeyQueries(tx);
        await q.lockSigningKeys();
        if ((await q.countSigningKeys()) > 0) return undefined;
        const rows = rowsFor(now());
        await q.insertSigningKeys(rows);
        return rows.map((r) => ({ kid: r.kid, alg: r.alg }));
      });
      if (!created) return false;
      await deps.audit.record({ type: 'keys.generated', outcome: 'success', actor: { type: 'system' }, details: { keys: created } });
      return true;
    },

    /**
     * Adds a new key per algorithm that signs after `activateInSeconds`; the keys it supersedes stay
     * published until their last signed token has expired.
     */
    async rotateSigningKeys(options: { activateInSeconds?: number; actor?: 'cli' | 'system' } = {}) {
      const delay = options.activateInSeconds ?? deps.rotationDelaySeconds;
      const activatesAt = new Date(now().getTime() + delay * 1000);
      const retiresAt = new Date(activatesAt.getTime() + deps.maxSignedTtlSeconds * 1000);
      const rows = rowsFor(activatesAt);
      await deps.db.transaction(async (tx) => {
        const q = createSigningKeyQueries(tx);
        await q.lockSigningKeys();
        await q.retireCurrentSigningKeys(retiresAt);
        await q.insertSigningKeys(rows);
      });
      const result = { keys: rows.map((r) => ({ kid: r.kid, alg: r.alg })), activates_at: activatesAt.toISOString(), previous_retire_at: retiresAt.toISOString() };
      await deps.audit.record({ type: 'keys.rotated', outcome: 'success', actor: { type: options.actor ?? 'cli' }, details: result });
      return result;
    },

    /** The published keys and what each does now: `signing`, `pending` (published, not yet signing) or `retiring`. */
    async listSigningKeys() {
      const at = now();
      const rows = await queries.findPublishedSigningKeys(at);
      const signing = signingKidsAt(rows, at);
      return rows.map((r) => ({
        kid: r.kid,
        alg: r.alg,
        state: signing.has(r.kid) ? 'signing' : r.activatesAt > at ? 'pending' : 'retiring',
        activates_at: r.activatesAt.toISOString(),
        retires_at: r.retiresAt?.toISOString() ?? null,
      }));
    },

    /** Cheap check used by every replica's poll: the fingerprint, without decrypting anything. */
    async currentFingerprint(): Promise<string> {
      return fingerprintOf(await queries.findSigningKeyStates(now()), now());
    },

    async loadKeySet(): Promise<KeySet> {
      const at = now();
      const rows = await queries.findPublishedSigningKeys(at);
      const signing = signingKidsAt(rows, at);
      const keys = rows.map((row) => {
        const jwk = unseal(row);
        return signing.has(row.kid) ? jwk : { ...jwk, key_ops: ['verify'] };
      });
      // Signing keys first: the library picks the first matching key when it signs.
      keys.sort((a, b) => Number(b.key_ops === undefined) - Number(a.key_ops === undefined));
      return {
        jwks: { keys },
        fingerprint: fingerprintOf(rows, at),
      };
    },
  };
}
export type SigningKeyService = ReturnType<typeof createSigningKeyService>;
