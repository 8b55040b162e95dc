/**
 * Ends oidc-provider state from outside the provider (a user revoking a browser session or an app's grant
 * from their list, password reset, logout everywhere). Grants are revoked the way the adapter revokes
 * them: a tombstone first, then the artefacts, so a token written a moment later is dead too.
 */
import { and, eq, gt, inArray, isNull, ne, notInArray, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { oidcPayloads, oidcRevokedGrants, users } from '../db/schema/index.js';
import { isUuid } from '../lib/uuid.js';

const clientSid = (clientId: string, sid: string) => sql`${oidcPayloads.payload} -> 'authorizations' -> ${clientId} ->> 'sid' = ${sid}`;
const notExpiredAt = (now: Date) => or(isNull(oidcPayloads.expiresAt), gt(oidcPayloads.expiresAt, now));

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
     * `keep` spares one browser session and the grants named (the caller's own, for "sign out everywhere else").
     */
    async revokeOidcStateByAccount(accountId: string, tombstoneExpiresAt: Date, at: Date, keep?: { sessionId: string; grantIds: string[] }): Promise<void> {
      // First, so a write-back racing the deletes below is already refused.
      if (isUuid(accountId)) await db.update(users).set({ sessionsValidAfter: at, sessionsKeptId: keep?.sessionId ?? null }).where(eq(users.id, accountId));
      const grants = await db
        .select({ id: oidcPayloads.id })
        .from(oidcPayloads)
        .where(and(eq(oidcPayloads.model, 'Grant'), eq(oidcPayloads.accountId, accountId), keep?.grantIds.length ? notInArray(oidcPayloads.id, keep.grantIds) : undefined));
      await revokeGrants(
        grants.map((g) => g.id),
        tombstoneExpiresAt,
      );
      await db
        .delete(oidcPayloads)
        .where(and(eq(oidcPayloads.model, 'Session'), eq(oidcPayloads.accountId, accountId), keep ? ne(oidcPayloads.id, keep.sessionId) : undefined));
    },

    /**
     * The live browser session of an account that issued `sid` to `clientId` (`sid` is per client), with the
     * grant it holds for that client.
     */
    async findSessionByClientSid(input: { accountId: string; clientId: string; sid: string; now: Date }): Promise<{ id: string; grantId: string | undefined } | undefined> {
      const [row] = await db
        .select({ id: oidcPayloads.id, grantId: sql<string | null>`${oidcPayloads.payload} -> 'authorizations' -> ${input.clientId} ->> 'grantId'` })
        .from(oidcPayloads)
        .where(and(eq(oidcPayloads.model, 'Session'), eq(oidcPayloads.accountId, input.accountId), clientSid(input.clientId, input.sid), notExpiredAt(input.now)))
        .limit(1);
      return row ? { id: row.id, grantId: row.grantId ?? undefined } : undefined;
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
        clientSid(input.clientId, input.sid),
        notExpiredAt(input.now),
      ),
    )
    .limit(1);
  return rows.length > 0;
}
