/**
 * Data access of the alert outbox, the evaluator's view of the audit log and the job-run records.
 */
import { and, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import { selectRows, type DbOrTx } from '../db/client.js';
import { alertDeliveries, alertEvaluatedEvents, alerts, auditEvents, jobRuns, signingKeys } from '../db/schema/index.js';
import type { Cursor } from '../lib/pagination.js';

export type AlertRow = typeof alerts.$inferSelect;
export type AlertDeliveryRow = typeof alertDeliveries.$inferSelect;
export type AuditEventRow = typeof auditEvents.$inferSelect;

export interface NewAlert {
  type: string;
  severity: AlertRow['severity'];
  groupKey: string;
  dedupeKey: string;
  summary: string;
  details: Record<string, unknown>;
  eventIds: string[];
  createdAt: Date;
}

export function createAlertQueries(db: DbOrTx) {
  return {
    /** Takes the transaction-level advisory lock `key`; false when another session holds it. */
    async tryLock(key: number): Promise<boolean> {
      const [row] = await selectRows<{ locked: boolean }>(db, sql`select pg_try_advisory_xact_lock(${key}) as locked`);
      return Boolean(row?.locked);
    },

    async findJobRun(name: string) {
      const [row] = await db.select().from(jobRuns).where(eq(jobRuns.name, name));
      return row;
    },

    async upsertJobRun(name: string, lastRunAt: Date, cursor?: Date) {
      await db
        .insert(jobRuns)
        .values({ name, lastRunAt, cursor: cursor ?? null })
        .onConflictDoUpdate({ target: jobRuns.name, set: { lastRunAt, ...(cursor ? { cursor } : {}) } });
    },

    /** Events of the given types stored at or after `since`, oldest first, in keyset pages after `after`. Successful logins are left out. */
    async findAuditEventsSince(since: Date, types: readonly string[], limit: number, after?: { at: Date; id: string }): Promise<AuditEventRow[]> {
      return db
        .select()
        .from(auditEvents)
        .where(
          and(
            sql`${auditEvents.occurredAt} >= ${since.toISOString()}::timestamptz`,
            inArray(auditEvents.type, [...types]),
            sql`not (${auditEvents.type} = 'login' and ${auditEvents.outcome} = 'success')`,
            after ? sql`(${auditEvents.occurredAt}, ${auditEvents.id}) > (${after.at.toISOString()}::timestamptz, ${after.id}::uuid)` : undefined,
          ),
        )
        .orderBy(auditEvents.occurredAt, auditEvents.id)
        .limit(limit);
    },

    /** Marks events judged; returns the ids that were not judged before (the ones to judge now). */
    async markEventsEvaluated(events: Array<{ id: string; occurredAt: Date }>): Promise<Set<string>> {
      if (!events.length) return new Set();
      const rows = await db
        .insert(alertEvaluatedEvents)
        .values(events.map((e) => ({ eventId: e.id, occurredAt: e.occurredAt })))
        .onConflictDoNothing()
        .returning({ id: alertEvaluatedEvents.eventId });
      return new Set(rows.map((r) => r.id));
    },

    async deleteEvaluatedEventsBefore(before: Date): Promise<void> {
      await db.delete(alertEvaluatedEvents).where(lt(alertEvaluatedEvents.occurredAt, before));
    },

    /** Failed password logins with an address, in a time window (the credential-stuffing rule groups them); `to` is at millisecond precision, the column finer. */
    async findLoginFailuresBetween(from: Date, to: Date): Promise<Array<{ id: string; ip: string; identifierDigest: string | null; occurredAt: Date }>> {
      const rows = await selectRows<{ id: string; ip: string; identifier_digest: string | null; occurred_at: string | Date }>(
        db,
        sql`select id, host(ip) as ip, details->>'identifier_digest' as identifier_digest, occurred_at from ${auditEvents}
            where type = 'login' and outcome = 'failure' and ip is not null
              and occurred_at >= ${from.toISOString()}::timestamptz and occurred_at < ${to.toISOString()}::timestamptz + interval '1 millisecond'
            order by occurred_at`,
      );
      return rows.map((r) => ({ id: r.id, ip: r.ip, identifierDigest: r.identifier_digest, occurredAt: new Date(r.occurred_at) }));
    },

    /** Whether an alert of `type` for `groupKey` was raised at or after `since` (aggregation windows). */
    async existsAlertSince(type: string, groupKey: string, since: Date): Promise<boolean> {
      const [row] = await db
        .select({ id: alerts.id })
        .from(alerts)
        .where(and(eq(alerts.type, type), eq(alerts.groupKey, groupKey), sql`${alerts.createdAt} >= ${since.toISOString()}::timestamptz`))
        .limit(1);
      return Boolean(row);
    },

    /**
     * Writes an alert and one pending delivery per destination; nothing when its dedupe key exists already.
     * Run inside a transaction (the caller's), so an alert never exists without its deliveries.
     */
    async insertAlert(alert: NewAlert, destinations: Array<{ channel: AlertDeliveryRow['channel']; target: string }>): Promise<AlertRow | undefined> {
      const [row] = await db.insert(alerts).values(alert).onConflictDoNothing({ target: alerts.dedupeKey }).returning();
      if (row && destinations.length) {
        await db.insert(alertDeliveries).values(destinations.map((d) => ({ alertId: row.id, channel: d.channel, target: d.target, nextAttemptAt: alert.createdAt, createdAt: alert.createdAt })));
      }
      return row;
    },

    /**
     * Claims due deliveries: rows another replica is claiming are skipped (FOR UPDATE SKIP LOCKED), and the
     * claim moves `next_attempt_at` forward by the lease, so nobody else takes them while they are sent.
     */
    async claimDueDeliveries(now: Date, leaseUntil: Date, limit: number): Promise<Array<AlertDeliveryRow & { alert: AlertRow }>> {
      const claimed = await db
        .update(alertDeliveries)
        .set({ nextAttemptAt: leaseUntil, attempts: sql`${alertDeliveries.attempts} + 1`, lastAttemptAt: now })
        .where(
          inArray(
            alertDeliveries.id,
            sql`(select id from ${alertDeliveries} where state = 'pending' and next_attempt_at <= ${now.toISOString()}::timestamptz
                 order by next_attempt_at limit ${limit} for update skip locked)`,
          ),
        )
        .returning();
      if (!claimed.length) return [];
      const rows = await db.select().from(alerts).where(inArray(alerts.id, [...new Set(claimed.map((d) => d.alertId))]));
      const byId = new Map(rows.map((a) => [a.id, a]));
      return claimed.flatMap((d) => {
        const alert = byId.get(d.alertId);
        return alert ? [{ ...d, alert }] : [];
      });
    },

    async markDelivered(id: string, at: Date) {
      await db.update(alertDeliveries).set({ state: 'delivered', deliveredAt: at, lastError: null }).where(eq(alertDeliveries.id, id));
    },

    async markRetry(id: string, nextAttemptAt: Date, error: string) {
      await db.update(alertDeliveries).set({ nextAttemptAt, lastError: error }).where(eq(alertDeliveries.id, id));
    },

    async markFailed(id: string, error: string) {
      await db.update(alertDeliveries).set({ state: 'failed', lastError: error }).where(eq(alertDeliveries.id, id));
    },

    /** Newest first, keyset-paginated by (created_at, id). */
    async listAlerts(args: { limit: number; after?: Cursor | undefined; type?: string | undefined }): Promise<AlertRow[]> {
      const after = args.after;
      return db
        .select()
        .from(alerts)
        .where(
          and(
            args.type ? eq(alerts.type, args.type) : undefined,
            after
              ? or(lt(alerts.createdAt, new Date(after.key)), and(eq(alerts.createdAt, new Date(after.key)), lt(alerts.id, after.id)))
              : undefined,
          ),
        )
        .orderBy(desc(alerts.createdAt), desc(alerts.id))
        .limit(args.limit + 1);
    },

    /** Keys that sign now: active and not retired. */
    async findCurrentSigningKeys(now: Date) {
      return db
        .select({ kid: signingKeys.kid, alg: signingKeys.alg, createdAt: signingKeys.createdAt })
        .from(signingKeys)
        .where(and(sql`${signingKeys.activatesAt} <= ${now.toISOString()}::timestamptz`, sql`${signingKeys.retiresAt} is null`));
    },

    async findDeliveriesByAlerts(alertIds: string[]): Promise<AlertDeliveryRow[]> {
      if (!alertIds.length) return [];
      return db.select().from(alertDeliveries).where(inArray(alertDeliveries.alertId, alertIds)).orderBy(alertDeliveries.createdAt, alertDeliveries.target);
    },
  };
}
export type AlertQueries = ReturnType<typeof createAlertQueries>;
