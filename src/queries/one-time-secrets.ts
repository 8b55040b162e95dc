/**
 * Login challenges and password reset links: single-use, bounded and atomic. Only digests are stored;
 * attempts and consumption are single conditional UPDATEs, so two replicas can never both accept one.
 */
import { and, eq, gt, isNull, lt, sql } from 'drizzle-orm';
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

    async findLoginChallengeByHash(hash: string): Promise<LoginChallengeRow | undefined> {
      const [row] = await db.select().from(loginChallenges).where(eq(loginChallenges.challengeHash, hash)).limit(1);
      return row;
    },

    /** Counts one attempt, only while the challenge is open, unexpired and under the limit. */
    async countLoginChallengeAttempt(id: string, now: Date, maxAttempts: number): Promise<boolean> {
      const rows = await db
        .update(loginChallenges)
        .set({ attempts: sql`${loginChallenges.attempts} + 1` })
        .where(and(eq(loginChallenges.id, id), isNull(loginChallenges.consumedAt), gt(loginChallenges.expiresAt, now), lt(loginChallenges.attempts, maxAttempts)))
        .returning({ id: loginChallenges.id });
      return rows.length > 0;
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
    async consumePasswordResetToken(hash: string, now: Date): Promise<string | undefined> {
      const [row] = await db
        .update(passwordResetTokens)
        .set({ consumedAt: now })
        .where(and(eq(passwordResetTokens.tokenHash, hash), isNull(passwordResetTokens.consumedAt), gt(passwordResetTokens.expiresAt, now)))
        .returning({ userId: passwordResetTokens.userId });
      return row?.userId;
    },

    /** Whether a reset link is still usable (the page shows the form only then); does not consume it. */
    async isPasswordResetTokenUsable(hash: string, now: Date): Promise<boolean> {
      const [row] = await db
        .select({ id: passwordResetTokens.id })
        .from(passwordResetTokens)
        .where(and(eq(passwordResetTokens.tokenHash, hash), isNull(passwordResetTokens.consumedAt), gt(passwordResetTokens.expiresAt, now)))
        .limit(1);
      return Boolean(row);
    },

    async findPasswordResetUserId(hash: string): Promise<string | undefined> {
      const [row] = await db.select({ userId: passwordResetTokens.userId }).from(passwordResetTokens).where(eq(passwordResetTokens.tokenHash, hash)).limit(1);
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
