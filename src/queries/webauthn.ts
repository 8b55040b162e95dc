/**
 * Data access for passkeys: their credentials and their challenges. A challenge is consumed, and a
 * credential's signature counter moved, each by one conditional statement, so two replicas presented the
 * same assertion can never both accept it.
 */
import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { mfaFactors, webauthnChallenges, webauthnCredentials } from '../db/schema/index.js';

export type WebauthnCredentialRow = typeof webauthnCredentials.$inferSelect;
export type WebauthnChallengeRow = typeof webauthnChallenges.$inferSelect;
/** A credential with what its factor row holds: the user's name for it, when it was created and last used. */
export type PasskeyRow = WebauthnCredentialRow & { name: string; lastUsedAt: Date | null };

const passkeyColumns = {
  id: webauthnCredentials.id,
  factorId: webauthnCredentials.factorId,
  userId: webauthnCredentials.userId,
  credentialId: webauthnCredentials.credentialId,
  publicKey: webauthnCredentials.publicKey,
  signCount: webauthnCredentials.signCount,
  transports: webauthnCredentials.transports,
  backupEligible: webauthnCredentials.backupEligible,
  backedUp: webauthnCredentials.backedUp,
  aaguid: webauthnCredentials.aaguid,
  userVerified: webauthnCredentials.userVerified,
  createdAt: webauthnCredentials.createdAt,
  name: mfaFactors.label,
  lastUsedAt: mfaFactors.lastUsedAt,
};

export function createWebauthnQueries(db: DbOrTx) {
  const passkeys = () => db.select(passkeyColumns).from(webauthnCredentials).innerJoin(mfaFactors, eq(mfaFactors.id, webauthnCredentials.factorId));

  return {
    async insertChallenge(values: typeof webauthnChallenges.$inferInsert): Promise<void> {
      await db.insert(webauthnChallenges).values(values);
    },

    async findChallengeByDigest(digest: string): Promise<WebauthnChallengeRow | undefined> {
      const [row] = await db.select().from(webauthnChallenges).where(eq(webauthnChallenges.challengeHash, digest)).limit(1);
      return row;
    },

    /** Consumes a challenge: succeeds once, only before it expires. */
    async consumeChallenge(id: string, now: Date): Promise<boolean> {
      const rows = await db
        .update(webauthnChallenges)
        .set({ consumedAt: now })
        .where(and(eq(webauthnChallenges.id, id), isNull(webauthnChallenges.consumedAt), gt(webauthnChallenges.expiresAt, now)))
        .returning({ id: webauthnChallenges.id });
      return rows.length > 0;
    },

    async insertCredential(values: typeof webauthnCredentials.$inferInsert): Promise<void> {
      await db.insert(webauthnCredentials).values(values);
    },

    async credentialIdExists(credentialId: string): Promise<boolean> {
      const [row] = await db.select({ id: webauthnCredentials.id }).from(webauthnCredentials).where(eq(webauthnCredentials.credentialId, credentialId)).limit(1);
      return Boolean(row);
    },

    /** The passkey an assertion names (any user's: the caller checks whose it is). Only active factors count. */
    async findPasskeyByCredentialId(credentialId: string): Promise<PasskeyRow | undefined> {
      const [row] = await passkeys()
        .where(and(eq(webauthnCredentials.credentialId, credentialId), sql`${mfaFactors.confirmedAt} is not null`))
        .limit(1);
      return row;
    },

    async listPasskeysByUser(userId: string): Promise<PasskeyRow[]> {
      return passkeys()
        .where(and(eq(webauthnCredentials.userId, userId), sql`${mfaFactors.confirmedAt} is not null`))
        .orderBy(asc(webauthnCredentials.createdAt), asc(webauthnCredentials.id));
    },

    /** Scoped to the owner: another user's passkey (by its factor id) finds nothing. */
    async findPasskeyOfUser(userId: string, factorId: string): Promise<PasskeyRow | undefined> {
      const [row] = await passkeys()
        .where(and(eq(webauthnCredentials.userId, userId), eq(webauthnCredentials.factorId, factorId)))
        .limit(1);
      return row;
    },

    /**
     * Records an accepted assertion: the counter moves only forward (or stays 0 for an authenticator that
     * keeps none), in the same statement that checks it, so a replayed or cloned assertion whose counter is
     * not above the stored one changes nothing and answers false.
     * @see https://www.w3.org/TR/webauthn-3/#sctn-sign-counter
     */
    async recordAssertion(credentialRowId: string, newCount: number, backedUp: boolean, now: Date): Promise<string | undefined> {
      const [row] = await db
        .update(webauthnCredentials)
        .set({ signCount: newCount, backedUp })
        .where(
          and(
            eq(webauthnCredentials.id, credentialRowId),
            sql`((${newCount}::bigint = 0 and ${webauthnCredentials.signCount} = 0) or ${newCount}::bigint > ${webauthnCredentials.signCount})`,
          ),
        )
        .returning({ factorId: webauthnCredentials.factorId });
      if (!row) return undefined;
      await db.update(mfaFactors).set({ lastUsedAt: now }).where(eq(mfaFactors.id, row.factorId));
      return row.factorId;
    },

    async renamePasskey(userId: string, factorId: string, name: string): Promise<boolean> {
      const rows = await db
        .update(mfaFactors)
        .set({ label: name })
        .where(and(eq(mfaFactors.id, factorId), eq(mfaFactors.userId, userId), eq(mfaFactors.type, 'webauthn')))
        .returning({ id: mfaFactors.id });
      return rows.length > 0;
    },
  };
}
