/**
 * Data access for second factors, one-time codes, send counters, trusted devices, known networks and
 * "this wasn't me" reports. Everything that must hold across replicas (a TOTP step accepted once, a code
 * consumed once, a send allowed) is one conditional statement.
 */
import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lt, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { mfaFactors, mfaRecoveryCodes, otpCodes, otpSendCounters, securityReports, trustedDevices, userNetworks, type FactorType } from '../db/schema/index.js';

/** The kinds of factor a user can hold. */
export type { FactorType } from '../db/schema/index.js';

export type FactorRow = typeof mfaFactors.$inferSelect;
/** A factor without its key material: what every finder but the purpose-named one returns. */
export type FactorView = Omit<FactorRow, 'secret'>;
export type OtpCodeRow = typeof otpCodes.$inferSelect;
export type TrustedDeviceRow = typeof trustedDevices.$inferSelect;

const factorColumns = {
  id: mfaFactors.id,
  userId: mfaFactors.userId,
  type: mfaFactors.type,
  label: mfaFactors.label,
  destination: mfaFactors.destination,
  data: mfaFactors.data,
  lastUsedStep: mfaFactors.lastUsedStep,
  preferred: mfaFactors.preferred,
  createdAt: mfaFactors.createdAt,
  confirmedAt: mfaFactors.confirmedAt,
  lastUsedAt: mfaFactors.lastUsedAt,
};

export function createMfaQueries(db: DbOrTx) {
  return {
    async insertFactor(values: typeof mfaFactors.$inferInsert): Promise<FactorView> {
      const [row] = await db.insert(mfaFactors).values(values).returning(factorColumns);
      if (!row) throw new Error('insert returned no row');
      return row;
    },

    async listFactorsByUser(userId: string): Promise<FactorView[]> {
      // Oldest first, recovery codes (the backup of the others) last.
      return db
        .select(factorColumns)
        .from(mfaFactors)
        .where(eq(mfaFactors.userId, userId))
        .orderBy(sql`${mfaFactors.type} = 'recovery_code'`, asc(mfaFactors.createdAt), asc(mfaFactors.id));
    },

    async listActiveFactorsByUser(userId: string): Promise<FactorView[]> {
      return db
        .select(factorColumns)
        .from(mfaFactors)
        .where(and(eq(mfaFactors.userId, userId), isNotNull(mfaFactors.confirmedAt)))
        .orderBy(desc(mfaFactors.preferred), asc(mfaFactors.createdAt));
    },

    /** Scoped to the owner: another user's factor id finds nothing. */
    async findFactorOfUser(userId: string, factorId: string): Promise<FactorView | undefined> {
      const [row] = await db.select(factorColumns).from(mfaFactors).where(and(eq(mfaFactors.id, factorId), eq(mfaFactors.userId, userId))).limit(1);
      return row;
    },

    async findFactorSecret(factorId: string): Promise<string | undefined> {
      const [row] = await db.select({ secret: mfaFactors.secret }).from(mfaFactors).where(eq(mfaFactors.id, factorId)).limit(1);
      return row?.secret ?? undefined;
    },

    async confirmFactor(factorId: string, now: Date): Promise<boolean> {
      const rows = await db
        .update(mfaFactors)
        .set({ confirmedAt: now })
        .where(and(eq(mfaFactors.id, factorId), isNull(mfaFactors.confirmedAt)))
        .returning({ id: mfaFactors.id });
      return rows.length > 0;
    },

    /**
     * Accepts a TOTP time step once: only a step later than the last accepted one moves the mark, so a code
     * (or an older one) presented again, on any replica, changes nothing and is refused.
     */
    async acceptTotpStep(factorId: string, step: number, now: Date): Promise<boolean> {
      const rows = await db
        .update(mfaFactors)
        .set({ lastUsedStep: step, lastUsedAt: now })
        .where(and(eq(mfaFactors.id, factorId), or(isNull(mfaFactors.lastUsedStep), lt(mfaFactors.lastUsedStep, step))))
        .returning({ id: mfaFactors.id });
      return rows.length > 0;
    },

    async touchFactor(factorId: string, now: Date): Promise<void> {
      await db.update(mfaFactors).set({ lastUsedAt: now }).where(eq(mfaFactors.id, factorId));
    },

    async setPreferredFactor(userId: string, factorId: string): Promise<void> {
      await db
        .update(mfaFactors)
        .set({ preferred: sql`${mfaFactors.id} = ${factorId}` })
        .where(eq(mfaFactors.userId, userId));
    },

    async deleteFactor(userId: string, factorId: string): Promise<boolean> {
      const rows = await db.delete(mfaFactors).where(and(eq(mfaFactors.id, factorId), eq(mfaFactors.userId, userId))).returning({ id: mfaFactors.id });
      return rows.length > 0;
    },

    /** Factors created at or after `since`, and `alsoId` (a compromise report removes what the intruder added). */
    async deleteFactorsAddedSince(userId: string, since: Date, alsoId?: string): Promise<Array<{ id: string; type: FactorType }>> {
      const added = alsoId && /^[0-9a-f-]{36}$/i.test(alsoId) ? or(sql`${mfaFactors.createdAt} >= ${since.toISOString()}::timestamptz`, eq(mfaFactors.id, alsoId)) : sql`${mfaFactors.createdAt} >= ${since.toISOString()}::timestamptz`;
      return db.delete(mfaFactors).where(and(eq(mfaFactors.userId, userId), added)).returning({ id: mfaFactors.id, type: mfaFactors.type });
    },

    /** Every factor and trusted device of the user (an administrator's reset after a lost phone). */
    async deleteAllFactorsAndDevices(userId: string): Promise<number> {
      const removed = await db.delete(mfaFactors).where(eq(mfaFactors.userId, userId)).returning({ id: mfaFactors.id });
      await db.delete(trustedDevices).where(eq(trustedDevices.userId, userId));
      return removed.length;
    },

    async deleteFactorsOfType(userId: string, type: FactorType): Promise<void> {
      await db.delete(mfaFactors).where(and(eq(mfaFactors.userId, userId), eq(mfaFactors.type, type)));
    },

    /** Unconfirmed factors of a type (an abandoned enrolment). */
    async deletePendingFactors(userId: string, type: FactorType): Promise<void> {
      await db.delete(mfaFactors).where(and(eq(mfaFactors.userId, userId), eq(mfaFactors.type, type), isNull(mfaFactors.confirmedAt)));
    },

    async insertRecoveryCodes(rows: Array<typeof mfaRecoveryCodes.$inferInsert>): Promise<void> {
      await db.insert(mfaRecoveryCodes).values(rows);
    },

    /** Uses a recovery code once; the lookup is by keyed digest, so nothing is compared in JavaScript. */
    async consumeRecoveryCode(userId: string, codeHash: string, now: Date): Promise<string | undefined> {
      const [row] = await db
        .update(mfaRecoveryCodes)
        .set({ usedAt: now })
        .where(and(eq(mfaRecoveryCodes.userId, userId), eq(mfaRecoveryCodes.codeHash, codeHash), isNull(mfaRecoveryCodes.usedAt)))
        .returning({ factorId: mfaRecoveryCodes.factorId });
      return row?.factorId;
    },

    async countUnusedRecoveryCodes(userId: string): Promise<number> {
      const [row] = await db
        .select({ n: sql<number>`count(*)::int` })
        .from(mfaRecoveryCodes)
        .where(and(eq(mfaRecoveryCodes.userId, userId), isNull(mfaRecoveryCodes.usedAt)));
      return row?.n ?? 0;
    },

    async insertOtpCode(values: typeof otpCodes.$inferInsert): Promise<void> {
      await db.insert(otpCodes).values(values);
    },

    /** The newest unconsumed code of a challenge (or of a factor enrolment) for a channel. */
    async findLatestOtpCode(where: { challengeId?: string; factorId?: string; userId: string; channel: 'sms' | 'email' }): Promise<OtpCodeRow | undefined> {
      const owner = where.challengeId
        ? eq(otpCodes.challengeId, where.challengeId)
        : where.factorId
          ? and(eq(otpCodes.factorId, where.factorId), isNull(otpCodes.challengeId))
          : and(isNull(otpCodes.challengeId), isNull(otpCodes.factorId));
      const [row] = await db
        .select()
        .from(otpCodes)
        .where(and(owner, eq(otpCodes.userId, where.userId), eq(otpCodes.channel, where.channel), isNull(otpCodes.consumedAt)))
        .orderBy(desc(otpCodes.createdAt))
        .limit(1);
      return row;
    },

    async countOtpCodes(challengeId: string, channel: 'sms' | 'email'): Promise<number> {
      const [row] = await db
        .select({ n: sql<number>`count(*)::int` })
        .from(otpCodes)
        .where(and(eq(otpCodes.challengeId, challengeId), eq(otpCodes.channel, channel)));
      return row?.n ?? 0;
    },

    /** Counts an attempt on a code that is not part of a challenge; false once it is used up or past its limit. */
    async countOtpAttempt(id: string, now: Date, maxAttempts: number): Promise<boolean> {
      const rows = await db
        .update(otpCodes)
        .set({ attempts: sql`${otpCodes.attempts} + 1` })
        .where(and(eq(otpCodes.id, id), isNull(otpCodes.consumedAt), gt(otpCodes.expiresAt, now), lt(otpCodes.attempts, maxAttempts)))
        .returning({ id: otpCodes.id });
      return rows.length > 0;
    },

    async consumeOtpCode(id: string, now: Date): Promise<boolean> {
      const rows = await db
        .update(otpCodes)
        .set({ consumedAt: now })
        .where(and(eq(otpCodes.id, id), isNull(otpCodes.consumedAt), gt(otpCodes.expiresAt, now)))
        .returning({ id: otpCodes.id });
      return rows.length > 0;
    },

    /**
     * Counts one send against `key` if it is allowed now: at least `intervalSeconds` after the previous one
     * (unless `ignoreInterval`), and fewer than `perWindow` in the current window. Returns the seconds to
     * wait when it is not allowed, 0 when the send was counted.
     */
    async countSend(key: string, o: { now: Date; intervalSeconds: number; windowSeconds: number; perWindow: number; ignoreInterval: boolean }): Promise<number> {
      const now = sql`${o.now.toISOString()}::timestamptz`;
      const windowOver = sql`${otpSendCounters.windowStart} <= ${now} - make_interval(secs => ${o.windowSeconds})`;
      const intervalOk = o.ignoreInterval ? sql`true` : sql`${otpSendCounters.lastSentAt} <= ${now} - make_interval(secs => ${o.intervalSeconds})`;
      const rows = await db
        .insert(otpSendCounters)
        .values({ key, windowStart: o.now, count: 1, lastSentAt: o.now })
        .onConflictDoUpdate({
          target: otpSendCounters.key,
          set: {
            windowStart: sql`case when ${windowOver} then ${now} else ${otpSendCounters.windowStart} end`,
            count: sql`case when ${windowOver} then 1 else ${otpSendCounters.count} + 1 end`,
            lastSentAt: now,
          },
          setWhere: sql`${intervalOk} and (${windowOver} or ${otpSendCounters.count} < ${o.perWindow})`,
        })
        .returning({ key: otpSendCounters.key });
      if (rows.length) return 0;
      const [row] = await db.select().from(otpSendCounters).where(eq(otpSendCounters.key, key)).limit(1);
      if (!row) return 1;
      const nowMs = o.now.getTime();
      const untilInterval = o.ignoreInterval ? 0 : row.lastSentAt.getTime() + o.intervalSeconds * 1000 - nowMs;
      const untilWindow = row.count >= o.perWindow ? row.windowStart.getTime() + o.windowSeconds * 1000 - nowMs : 0;
      return Math.max(1, Math.ceil(Math.max(untilInterval, untilWindow) / 1000));
    },

    async findTrustedDevice(userId: string, digest: string, now: Date): Promise<TrustedDeviceRow | undefined> {
      const [row] = await db
        .select()
        .from(trustedDevices)
        .where(and(eq(trustedDevices.userId, userId), eq(trustedDevices.deviceDigest, digest), gt(trustedDevices.trustedUntil, now)))
        .limit(1);
      return row;
    },

    async trustDevice(values: { userId: string; deviceDigest: string; deviceInfo: TrustedDeviceRow['deviceInfo']; ipAddress: string | null; now: Date; trustedUntil: Date }): Promise<TrustedDeviceRow> {
      const [row] = await db
        .insert(trustedDevices)
        .values({ ...values, createdAt: values.now, lastSeenAt: values.now })
        .onConflictDoUpdate({
          target: [trustedDevices.userId, trustedDevices.deviceDigest],
          set: { deviceInfo: values.deviceInfo, ipAddress: values.ipAddress, lastSeenAt: values.now, trustedUntil: values.trustedUntil },
        })
        .returning();
      if (!row) throw new Error('upsert returned no row');
      return row;
    },

    async touchTrustedDevice(id: string, ip: string | null, now: Date): Promise<void> {
      await db.update(trustedDevices).set({ lastSeenAt: now, ipAddress: ip }).where(eq(trustedDevices.id, id));
    },

    async listTrustedDevices(userId: string, now: Date): Promise<TrustedDeviceRow[]> {
      return db
        .select()
        .from(trustedDevices)
        .where(and(eq(trustedDevices.userId, userId), gt(trustedDevices.trustedUntil, now)))
        .orderBy(desc(trustedDevices.lastSeenAt));
    },

    async deleteTrustedDevice(userId: string, id: string): Promise<boolean> {
      const rows = await db.delete(trustedDevices).where(and(eq(trustedDevices.id, id), eq(trustedDevices.userId, userId))).returning({ id: trustedDevices.id });
      return rows.length > 0;
    },

    async deleteTrustedDeviceByDigest(userId: string, digest: string): Promise<void> {
      await db.delete(trustedDevices).where(and(eq(trustedDevices.userId, userId), eq(trustedDevices.deviceDigest, digest)));
    },

    async isKnownNetwork(userId: string, network: string, seenSince: Date): Promise<boolean> {
      const [row] = await db
        .select({ n: userNetworks.network })
        .from(userNetworks)
        .where(and(eq(userNetworks.userId, userId), eq(userNetworks.network, network), gt(userNetworks.lastSeenAt, seenSince)))
        .limit(1);
      return Boolean(row);
    },

    async rememberNetwork(userId: string, network: string, now: Date): Promise<void> {
      await db
        .insert(userNetworks)
        .values({ userId, network, firstSeenAt: now, lastSeenAt: now })
        .onConflictDoUpdate({ target: [userNetworks.userId, userNetworks.network], set: { lastSeenAt: now } });
    },

    async insertSecurityReport(values: typeof securityReports.$inferInsert): Promise<void> {
      await db.insert(securityReports).values(values);
    },

    async findUsableSecurityReport(digests: string[], now: Date) {
      const [row] = await db
        .select()
        .from(securityReports)
        .where(and(inArray(securityReports.tokenHash, digests), isNull(securityReports.usedAt), gt(securityReports.expiresAt, now)))
        .limit(1);
      return row;
    },

    async consumeSecurityReport(digests: string[], now: Date) {
      const [row] = await db
        .update(securityReports)
        .set({ usedAt: now })
        .where(and(inArray(securityReports.tokenHash, digests), isNull(securityReports.usedAt), gt(securityReports.expiresAt, now)))
        .returning();
      return row;
    },
  };
}
export type MfaQueries = ReturnType<typeof createMfaQueries>;

