/**
 * Failed-login counters in PostgreSQL, so every replica sees the same counts. Each update is a single
 * atomic upsert (INSERT ... ON CONFLICT DO UPDATE), so concurrent failures never lose a count.
 */
import { eq, inArray, like, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { knownDevices, loginFailures } from '../db/schema/index.js';

export type LoginFailureRow = typeof loginFailures.$inferSelect;

/** Doublings of the lock period that can matter: 2^40 s is ~35,000 years, far past any `maxLockSeconds`. */
const MAX_LOCK_EXPONENT = 40;

export function createLoginFailureQueries(db: DbOrTx) {
  return {
    async findLoginFailures(keys: string[]): Promise<LoginFailureRow[]> {
      if (!keys.length) return [];
      return db.select().from(loginFailures).where(inArray(loginFailures.key, keys));
    },

    /**
     * Counts a failure for an identifier or device key. A count idle since `resetBefore` starts again.
     * From `lockAfter` failures on, each failure locks the key for `lockSeconds * 2^locks`, capped. The
     * exponent is clamped (2^40 s outlasts any cap): unclamped, float8 `power(2, n)` times the lock overflows
     * after ~1,000 locks, and the failure would end in an SQL error instead of being counted and audited.
     */
    async recordIdentifierFailure(key: string, o: { now: Date; resetBefore: Date; lockAfter: number; lockSeconds: number; maxLockSeconds: number }) {
      const now = o.now.toISOString();
      const stale = sql`${loginFailures.lastFailureAt} < ${o.resetBefore.toISOString()}::timestamptz`;
      const failures = sql`(case when ${stale} then 1 else ${loginFailures.failures} + 1 end)`;
      const locks = sql`(case when ${stale} then 0 else ${loginFailures.lockCount} end)`;
      const [row] = await db
        .insert(loginFailures)
        .values({ key, failures: 1, lockCount: 0, firstFailureAt: o.now, lastFailureAt: o.now })
        .onConflictDoUpdate({
          target: loginFailures.key,
          set: {
            failures,
            lockCount: sql`case when ${failures} >= ${o.lockAfter} then ${locks} + 1 else ${locks} end`,
            lockedUntil: sql`case when ${failures} >= ${o.lockAfter}
              then ${now}::timestamptz + make_interval(secs => least(${o.lockSeconds}::float8 * power(2, least(${locks}, ${MAX_LOCK_EXPONENT}::int)), ${o.maxLockSeconds}::float8))
              when ${stale} then null else ${loginFailures.lockedUntil} end`,
            firstFailureAt: sql`case when ${stale} then ${now}::timestamptz else ${loginFailures.firstFailureAt} end`,
            lastFailureAt: o.now,
          },
        })
        .returning();
      return row;
    },

    /** Counts a failure from an IP in a fixed window that starts at its first failure. */
    async recordIpFailure(key: string, o: { now: Date; windowStart: Date }) {
      const now = o.now.toISOString();
      const stale = sql`${loginFailures.firstFailureAt} < ${o.windowStart.toISOString()}::timestamptz`;
      const [row] = await db
        .insert(loginFailures)
        .values({ key, failures: 1, lockCount: 0, firstFailureAt: o.now, lastFailureAt: o.now })
        .onConflictDoUpdate({
          target: loginFailures.key,
          set: {
            failures: sql`case when ${stale} then 1 else ${loginFailures.failures} + 1 end`,
            firstFailureAt: sql`case when ${stale} then ${now}::timestamptz else ${loginFailures.firstFailureAt} end`,
            lastFailureAt: o.now,
          },
        })
        .returning();
      return row;
    },

    async deleteLoginFailure(key: string): Promise<void> {
      await db.delete(loginFailures).where(eq(loginFailures.key, key));
    },

    /** The identifier's shared count and every device count under it. */
    async findLoginFailuresByIdentifier(identifierKey: string, devicePrefix: string): Promise<LoginFailureRow[]> {
      return db.select().from(loginFailures).where(or(eq(loginFailures.key, identifierKey), like(loginFailures.key, `${devicePrefix}%`)));
    },

    /** Removes the identifier's shared count and every device count under it. */
    async deleteLoginFailuresByIdentifier(identifierKey: string, devicePrefix: string): Promise<number> {
      const rows = await db
        .delete(loginFailures)
        .where(or(eq(loginFailures.key, identifierKey), like(loginFailures.key, `${devicePrefix}%`)))
        .returning({ key: loginFailures.key });
      return rows.length;
    },

    async isKnownDevice(userId: string, deviceDigest: string): Promise<boolean> {
      const [row] = await db
        .select({ one: sql<number>`1` })
        .from(knownDevices)
        .where(sql`${knownDevices.userId} = ${userId} and ${knownDevices.deviceDigest} = ${deviceDigest}`)
        .limit(1);
      return Boolean(row);
    },

    async rememberDevice(userId: string, deviceDigest: string, at: Date): Promise<void> {
      await db
        .insert(knownDevices)
        .values({ userId, deviceDigest, createdAt: at, lastSeenAt: at })
        .onConflictDoUpdate({ target: [knownDevices.userId, knownDevices.deviceDigest], set: { lastSeenAt: at } });
    },
  };
}
export type LoginFailureQueries = ReturnType<typeof createLoginFailureQueries>;
