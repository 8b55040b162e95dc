/** A user's own security events from the audit log (as actor or subject), newest first, one keyset page at a time. */
import { and, desc, eq, inArray, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { auditEvents } from '../db/schema/index.js';
import type { Cursor } from '../lib/pagination.js';
import { MICROSECOND_TIME, olderThan } from './audit-log.js';

export interface ActivityRow {
  id: string;
  type: string;
  outcome: 'success' | 'failure';
  occurredAt: Date;
  /** `occurredAt` as RFC 3339 with the database's microseconds: the page key (a Date would cut it and skip rows). */
  key: string;
  ip: string | null;
  userAgent: string | null;
  clientId: string | null;
  details: Record<string, unknown>;
}

const columns = {
  id: auditEvents.id,
  type: auditEvents.type,
  outcome: auditEvents.outcome,
  occurredAt: auditEvents.occurredAt,
  key: MICROSECOND_TIME,
  // host() gives the bare address, the same text on every driver.
  ip: sql<string | null>`host(${auditEvents.ip})`,
  userAgent: auditEvents.userAgent,
  clientId: auditEvents.clientId,
  details: auditEvents.details,
};

/** The user's events: as the actor, or as the subject (a failed sign-in to the account, a report). */
const mine = (userId: string) =>
  or(and(eq(auditEvents.actorType, 'user'), eq(auditEvents.actorId, userId)), and(eq(auditEvents.subjectType, 'user'), eq(auditEvents.subjectId, userId)));

export function createActivityQueries(db: DbOrTx) {
  return {
    /**
     * Up to `limit` events of the user strictly after `after` in (time, id) descending order; only the given
     * `types` when named.
     */
    async findUserActivity(userId: string, page: { limit: number; after?: Cursor | undefined; types?: readonly string[] | undefined }): Promise<ActivityRow[]> {
      return db
        .select(columns)
        .from(auditEvents)
        .where(and(mine(userId), page.types ? inArray(auditEvents.type, [...page.types]) : undefined, olderThan(page.after)))
        .orderBy(desc(auditEvents.occurredAt), desc(auditEvents.id))
        .limit(page.limit);
    },

    /** One event of the user by id, or undefined (someone else's event is not found). */
    async findUserEvent(userId: string, id: string): Promise<ActivityRow | undefined> {
      const [row] = await db.select(columns).from(auditEvents).where(and(mine(userId), eq(auditEvents.id, id))).limit(1);
      return row;
    },
  };
}
