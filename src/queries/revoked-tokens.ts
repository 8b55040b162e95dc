/**
 * Revocation state of access tokens nothing stores (JWTs): one row per revoked `jti` until the token's own
 * expiry, and the grant tombstones the adapter writes. Every replica reads the same rows, so a revocation
 * is seen everywhere at once.
 * @see RFC 7009 §2.1
 */
import { and, eq, gt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { oidcRevokedGrants, oidcRevokedTokens } from '../db/schema/index.js';

export function createRevokedTokenQueries(db: Db) {
  const jtiParam = sql.placeholder('jti');
  const grantParam = sql.placeholder('grantId');
  // Hot on every API request with a provider JWT: one prepared statement answering both questions.
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
    async isAccessTokenRevoked(token: { jti: string; grantId?: string | undefined }): Promise<boolean> {
      // An empty grant id matches no tombstone (grant ids are never empty).
      const rows = await revokedByJtiOrGrant.execute({ jti: token.jti, grantId: token.grantId ?? '' });
      return rows.length > 0;
    },
  };
}
export type RevokedTokenQueries = ReturnType<typeof createRevokedTokenQueries>;
