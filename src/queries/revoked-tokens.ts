/**
 * Revocation state of access tokens nothing stores (JWTs): one row per revoked `jti` until the token's own
 * expiry, and the grant tombstones the adapter writes. Every replica reads the same rows; triggers announce
 * each new one on the revocations channel (services/revoked-token-cache.ts).
 * @see RFC 7009 §2.1
 */
import { and, eq, gt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { oidcRevokedGrants, oidcRevokedTokens } from '../db/schema/index.js';

/** What identifies a JWT access token's revocation: its own id, and the grant it was issued under (when it names one). */
export interface RevocableToken {
  jti: string;
  grantId?: string | undefined;
}

export function createRevokedTokenQueries(db: Db) {
  const jtiParam = sql.placeholder('jti');
  const grantParam = sql.placeholder('grantId');
  // Asked once per token and replica (services/revoked-token-cache.ts), and on every check while notifications are
  // down: one prepared statement answering both questions.
  const revokedByJtiOrGrant = db
    .select({ one: sql<number>`1` })
    .from(oidcRevokedTokens)
    .where(and(eq(oidcRevokedTokens.jti, jtiParam), gt(oidcRevokedTokens.expiresAt, sql`now()`)))
    .unionAll(db.select({ one: sql<number>`1` }).from(oidcRevokedGrants).where(eq(oidcRevokedGrants.grantId, grantParam)))
    .limit(1)
    .prepare('keryu_access_token_revoked');

  return {
    /** Records a revoked JWT access token until `expiresAt` (its `exp`); revoking it twice changes nothing. */
    async insertRevokedToken(input: { jti: string; clientId: string; expiresAt: Date }): Promise<void> {
      await db.insert(oidcRevokedTokens).values(input).onConflictDoNothing();
    },

    /** Whether the token itself was revoked, or the grant it was issued under (when it names one). */
    async isAccessTokenRevoked(token: RevocableToken): Promise<boolean> {
      // An empty grant id matches no tombstone (grant ids are never empty).
      const rows = await revokedByJtiOrGrant.execute({ jti: token.jti, grantId: token.grantId ?? '' });
      return rows.length > 0;
    },
  };
}
export type RevokedTokenQueries = ReturnType<typeof createRevokedTokenQueries>;
