/** Aggregate counts of live sessions, for metrics: no row, user or device is ever returned. */
import { and, count, eq, gt, inArray, isNull, or } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { authTokens } from '../db/schema/index.js';

export function createSessionStatsQueries(db: Db) {
  return {
    /** First-party sessions and mirrored browser (SSO) sessions that are neither revoked nor past their end. */
    async countActiveSessions(now: Date): Promise<number> {
      const [row] = await db
        .select({ n: count() })
        .from(authTokens)
        .where(
          and(
            inArray(authTokens.kind, ['session', 'oidc_session']),
            eq(authTokens.isActive, true),
            isNull(authTokens.revokedAt),
            or(isNull(authTokens.expiresAt), gt(authTokens.expiresAt, now)),
            or(isNull(authTokens.idleExpiresAt), gt(authTokens.idleExpiresAt, now)),
          ),
        );
      return row?.n ?? 0;
    },
  };
}
export type SessionStatsQueries = ReturnType<typeof createSessionStatsQueries>;
