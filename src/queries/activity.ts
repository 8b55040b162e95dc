/** A user's own security events from the audit log (as actor or subject), newest first, one keyset page at a time. */
import { and, desc, eq, or } from 'drizzle-orm';
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

export function createActivityQueries(db: DbOrTx) {
  return {
    /** Up to `limit` events of the user strictly after `after` in (time, id) descending order. */
    async findUserActivity(userId: string, page: { limit: number; after?: Cursor | undefined }): Promise<ActivityRow[]> {
      const mine = or(and(eq(auditEvents.actorType, 'user'), eq(auditEvents.actorId, userId)), and(eq(auditEvents.subjectType, 'user'), eq(auditEvents.subjectId, userId)));
      return db
        .select({
          id: auditEvents.id,
          type: auditEvents.type,
          outcome: auditEvents.outcome,
          occurredAt: auditEvents.occurredAt,
          key: MICROSECOND_TIME,
          ip: auditEvents.ip,
          userAgent: auditEvents.userAgent,
          clientId: auditEvents.clientId,
          details: auditEvents.details,
        })
        .from(auditEvents)
        .where(and(mine, olderThan(page.after)))
        .orderBy(desc(auditEvents.occurredAt), desc(auditEvents.id))
        .limit(page.limit);
    },
  };
}
