/**
 * Ends oidc-provider state from outside the provider (a user revoking a browser session or an app's grant
 * from their list, password reset, logout everywhere). Grants are revoked the way the adapter revokes
 * them: a tombstone first, then the artefacts, so a token written a moment later is dead too.
 */
import { and, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { oidcPayloads, oidcRevokedGrants, users } from '../db/schema/index.js';
import { isUuid } from '../lib/uuid.js';

export function createOidcSessionQueries(db: Db) {
  async function revokeGrants(grantIds: string[], tombstoneExpiresAt: Date): Promise<void> {
    if (!grantIds.length) return;
    await db.transaction(async (tx) => {
      await tx
        .insert(oidcRevokedGrants)
        .values(grantIds.map((grantId) => ({ grantId, expiresAt: tombstoneExpiresAt })))
        .onConflictDoNothing();
      await tx.delete(oidcPayloads).where(inArray(oidcPayloads.grantId, grantIds));
    });
  }

  return {
    revokeGrants,

    async deleteOidcSession(id: string): Promise<void> {
      await db.delete(oidcPayloads).where(and(eq(oidcPayloads.model, 'Session'), eq(oidcPayloads.id, id)));
    },

    /**
     * Ends every browser session and revokes every grant of an account. Sessions signed in before `at` stay dead
     * even if an in-flight request writes one back after the delete (the adapter checks `sessions_valid_after`).
     */
    async revokeOidcStateByAccount(accountId: string, tombstoneExpiresAt: Date, at: Date): Promise<void> {
      // First, so a write-back racing the deletes below is already refused.
      if (isUuid(accountId)) await db.update(users).set({ sessionsValidAfter: at }).where(eq(users.id, accountId));
      const grants = await db
        .select({ id: oidcPayloads.id })
        .from(oidcPayloads)
        .where(and(eq(oidcPayloads.model, 'Grant'), eq(oidcPayloads.accountId, accountId)));
      await revokeGrants(
        grants.map((g) => g.id),
        tombstoneExpiresAt,
      );
      await db.delete(oidcPayloads).where(and(eq(oidcPayloads.model, 'Session'), eq(oidcPayloads.accountId, accountId)));
    },
  };
}
export type OidcSessionQueries = ReturnType<typeof createOidcSessionQueries>;

/**
 * Whether the provider's browser session that issued `sid` to `clientId` still exists for `accountId`
 * (`sid` is per client: oidc-provider keeps it in the session's `authorizations`).
 */
export async function isClientSessionActive(db: Db, input: { accountId: string; clientId: string; sid: string; now: Date }): Promise<boolean> {
  const rows = await db
    .select({ id: oidcPayloads.id })
    .from(oidcPayloads)
    .where(
      and(
        eq(oidcPayloads.model, 'Session'),
        eq(oidcPayloads.accountId, input.accountId),
        sql`${oidcPayloads.payload} -> 'authorizations' -> ${input.clientId} ->> 'sid' = ${input.sid}`,
        or(isNull(oidcPayloads.expiresAt), gt(oidcPayloads.expiresAt, input.now)),
      ),
    )
    .limit(1);
  return rows.length > 0;
}
