/** A user's own security events from the audit log (as actor or subject), newest first. */
import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { auditEvents } from '../db/schema/index.js';
import { decodeTimeCursor, encodeCursor } from '../lib/pagination.js';

export function createActivityQueries(db: DbOrTx) {
  return {
    async listUserActivity(userId: string, limit: number, cursorValue: string | undefined) {
      const cursor = decodeTimeCursor(cursorValue);
      // The cursor keeps the database's microseconds (a JavaScript Date would cut them to milliseconds and skip rows).
      const after = cursor ? sql`${cursor.key}::timestamptz` : undefined;
      const page = cursor && after ? or(lt(auditEvents.occurredAt, after), and(eq(auditEvents.occurredAt, after), lt(auditEvents.id, cursor.id))) : undefined;
      const mine = or(and(eq(auditEvents.actorType, 'user'), eq(auditEvents.actorId, userId)), and(eq(auditEvents.subjectType, 'user'), eq(auditEvents.subjectId, userId)));
      const rows = await db
        .select({ event: auditEvents, key: sql<string>`to_char(${auditEvents.occurredAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` })
        .from(auditEvents)
        .where(and(mine, page))
        .orderBy(desc(auditEvents.occurredAt), desc(auditEvents.id))
        .limit(limit + 1);
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return {
        items: items.map(({ event: e }) => ({
          id: e.id,
          type: e.type,
          outcome: e.outcome,
          occurred_at: e.occurredAt.toISOString(),
          ip_address: e.ip,
          user_agent: e.userAgent,
          client_id: e.clientId,
          details: e.details,
        })),
        next_cursor: rows.length > limit && last ? encodeCursor({ key: last.key, id: last.event.id }) : null,
      };
    },
  };
}
