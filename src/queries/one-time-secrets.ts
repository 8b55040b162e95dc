/**
 * Login challenges and password reset links: single-use, bounded and atomic. Only digests are stored
 * (`TokenDigest` in lib/crypto.ts; finders take its `candidates`, matched in one query); attempts and consumption are single conditional UPDATEs, so two replicas can never both accept one.
 */
import { and, desc, eq, gt, inArray, isNull, lt, ne, notInArray, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { loginChallenges, passwordResetTokens } from '../db/schema/index.js';

export type LoginChallengeRow = typeof loginChallenges.$inferSelect;

export function createOneTimeSecretQueries(db: DbOrTx) {
  return {
    async insertLoginChallenge(values: typeof loginChallenges.$inferInsert): Promise<LoginChallengeRow> {
      const [row] = await db.insert(loginChallenges).values(values).returning();
      if (!row) throw new Error('insert returned no row');
      return row;
    },

    async findLoginChallengeByDigests(digests: string[]): Promise<LoginChallengeRow | undefined> {
      const [row] = await db.select().from(loginChallenges).where(inArray(loginChallenges.challengeHash, digests)).limit(1);
      return row;
    },

    /** The open challenge of a browser login (the interaction is bound to the browser by its cookie). */
    async findOpenLoginChallengeByInteraction(uid: string): Promise<LoginChallengeRow | undefined> {
      const [row] = await db
        .select()
        .from(loginChallenges)
        .where(and(eq(loginChallenges.interactionUid, uid), isNull(loginChallenges.consumedAt)))
        .orderBy(desc(loginChallenges.createdAt))
        .limit(1);
      return row;
    },

    /** Moves a challenge to its next step, only from the step it was read at (two passes of one step cannot both advance it). */
    async advanceLoginChallenge(id: string, from: string[], next: { steps: string[]; methods: string[]; amr: string[]; expiresAt: Date }): Promise<boolean> {
      const rows = await db
        .update(loginChallenges)
        .set(next)
        .where(and(eq(loginChallenges.id, id), isNull(loginChallenges.consumedAt), sql`${loginChallenges.steps} = ${`{${from.join(',')}}`}::text[]`))
        .returning({ id: loginChallenges.id });
      return rows.length > 0;
    },

    /** Ends every sign-in of a user still waiting for a step (its password proof is no longer trusted). */
    async consumeLoginChallengesByUser(userId: string, now: Date): Promise<void> {
      await db.update(loginChallenges).set({ consumedAt: now }).where(and(eq(loginChallenges.userId, userId), isNull(loginChallenges.consumedAt)));
    },

    /**
     * Ends the user's open API challenges from one device (its `device_id` label, or those without one when
     * null): a new login from a device replaces the one it left unfinished.
     */
    async consumeApiLoginChallengesOfDevice(userId: string, deviceId: string | null, now: Date): Promise<void> {
      await db
        .update(loginChallenges)
        .set({ consumedAt: now })
        .where(
          and(
            eq(loginChallenges.userId, userId),
            eq(loginChallenges.channel, 'api'),
            isNull(loginChallenges.consumedAt),
            sql`${loginChallenges.deviceId} is not distinct from ${deviceId}`,
          ),
        );
    },

    /**
     * Ends the user's open challenges other than `newId` and the `keepOthers` newest ones (each new login
     * trims them again, so concurrent logins overshoot the bound by at most their number, briefly).
     */
    async consumeLoginChallengesBeyond(userId: string, newId: string, keepOthers: number, now: Date): Promise<void> {
      const others = and(eq(loginChallenges.userId, userId), isNull(loginChallenges.consumedAt), ne(loginChallenges.id, newId));
      const newest = db
        .select({ id: loginChallenges.id })
        .from(loginChallenges)
        .where(others)
        .orderBy(desc(loginChallenges.createdAt), desc(loginChallenges.id))
        .limit(keepOthers);
      await db
        .update(loginChallenges)
        .set({ consumedAt: now })
        .where(and(others, notInArray(loginChallenges.id, newest)));
    },

    /** Ends a browser login's open challenges (a new password attempt starts over). */
    async consumeLoginChallengesByInteraction(uid: string, now: Date): Promise<void> {
      await db.update(loginChallenges).set({ consumedAt: now }).where(and(eq(loginChallenges.interactionUid, uid), isNull(loginChallenges.consumedAt)));
    },

    /** Counts one attempt, only while the challenge is open, unexpired and under the limit. */
    /**
     * Reserves one attempt before a code is checked, so parallel guesses cannot exceed the limit; returns the
     * attempts used so far, or undefined when none is left (or the challenge is closed).
     */
    async countLoginChallengeAttempt(id: string, now: Date, maxAttempts: number): Promise<number | undefined> {
      const [row] = await db
        .update(loginChallenges)
        .set({ attempts: sql`${loginChallenges.attempts} + 1` })
        .where(and(eq(loginChallenges.id, id), isNull(loginChallenges.consumedAt), gt(loginChallenges.expiresAt, now), lt(loginChallenges.attempts, maxAttempts)))
        .returning({ attempts: loginChallenges.attempts });
      return row?.attempts;
    },

    /** Whether a challenge was completed or ended (an attempt refused for it was not about wrong codes). */
    async isLoginChallengeConsumed(id: string): Promise<boolean> {
      const [row] = await db.select({ consumedAt: loginChallenges.consumedAt }).from(loginChallenges).where(eq(loginChallenges.id, id)).limit(1);
      return Boolean(row?.consumedAt);
    },

    /** Gives back the attempt a right code reserved: only wrong codes use a challenge up. */
    async refundLoginChallengeAttempt(id: string): Promise<void> {
      await db
        .update(loginChallenges)
        .set({ attempts: sql`greatest(${loginChallenges.attempts} - 1, 0)` })
        .where(eq(loginChallenges.id, id));
    },

    async consumeLoginChallenge(id: string, now: Date): Promise<boolean> {
      const rows = await db
        .update(loginChallenges)
        .set({ consumedAt: now })
        .where(and(eq(loginChallenges.id, id), isNull(loginChallenges.consumedAt)))
        .returning({ id: loginChallenges.id });
      return rows.length > 0;
    },

    async insertPasswordResetToken(values: typeof passwordResetTokens.$inferInsert): Promise<void> {
      await db.insert(passwordResetTokens).values(values);
    },

    /** Consumes a reset link: succeeds once, only before it expires; returns the user it is for. */
    async consumePasswordResetToken(digests: string[], now: Date): Promise<string | undefined> {
      const [row] = await db
        .update(passwordResetTokens)
        .set({ consumedAt: now })
        .where(and(inArray(passwordResetTokens.tokenHash, digests), isNull(passwordResetTokens.consumedAt), gt(passwordResetTokens.expiresAt, now)))
        .returning({ userId: passwordResetTokens.userId });
      return row?.userId;
    },

    /** Whether a reset link is still usable (the page shows the form only then); does not consume it. */
    async isPasswordResetTokenUsable(digests: string[], now: Date): Promise<boolean> {
      const [row] = await db
        .select({ id: passwordResetTokens.id })
        .from(passwordResetTokens)
        .where(and(inArray(passwordResetTokens.tokenHash, digests), isNull(passwordResetTokens.consumedAt), gt(passwordResetTokens.expiresAt, now)))
        .limit(1);
      return Boolean(row);
    },

    async findPasswordResetUserId(digests: string[]): Promise<string | undefined> {
      const [row] = await db.select({ userId: passwordResetTokens.userId }).from(passwordResetTokens).where(inArray(passwordResetTokens.tokenHash, digests)).limit(1);
      return row?.userId;
    },

    /** A new link makes the user's older ones useless. */
    async consumePasswordResetTokensByUser(userId: string, now: Date): Promise<void> {
      await db
        .update(passwordResetTokens)
        .set({ consumedAt: now })
        .where(and(eq(passwordResetTokens.userId, userId), isNull(passwordResetTokens.consumedAt)));
    },
  };
}
