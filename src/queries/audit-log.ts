/**
 * audit_events: the audit service's batched insert, and reading: filtered pages newest first (keyset on occurred_at, id), one event, and the seal
 * each row is covered by. Times travel as strings with the database's microseconds (a JavaScript Date would
 * cut them to milliseconds, skipping rows at page boundaries and changing what a seal's digest covers).
 */
import { and, desc, eq, gte, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { auditEvents } from '../db/schema/index.js';
import type { Cursor } from '../lib/pagination.js';

/** One row as stored, with its time as RFC 3339 in microseconds and the id of the seal covering it (if any). */
export interface AuditEventRow {
  id: string;
  seq: number;
  txId: number;
  at: string;
  type: string;
  outcome: 'success' | 'failure';
  actorType: string;
  actorId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  clientId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
  sealId: number | null;
}

export interface AuditEventFilter {
  /** Exact types (prefix forms already expanded against the catalogue). */
  types?: string[] | undefined;
  outcome?: 'success' | 'failure' | undefined;
  actorId?: string | undefined;
  subjectId?: string | undefined;
  clientId?: string | undefined;
  /** An address or a network (CIDR): rows whose address lies in it. */
  ip?: string | undefined;
  /** RFC 3339, inclusive. */
  from?: string | undefined;
  /** RFC 3339, exclusive. */
  to?: string | undefined;
}

export const MICROSECOND_TIME = sql<string>`to_char(${auditEvents.occurredAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The seal whose key range holds the row: the first seal whose upper key is at or above the row's key. */
const coveringSeal = sql<number | null>`(select s.id from audit_seals s where (s.upper_tx, s.upper_seq) >= (${auditEvents.txId}, ${auditEvents.seq}) order by s.upper_tx, s.upper_seq limit 1)`;

export const auditEventColumns = {
  id: auditEvents.id,
  seq: auditEvents.seq,
  txId: auditEvents.txId,
  at: MICROSECOND_TIME,
  type: auditEvents.type,
  outcome: auditEvents.outcome,
  actorType: auditEvents.actorType,
  actorId: auditEvents.actorId,
  subjectType: auditEvents.subjectType,
  subjectId: auditEvents.subjectId,
  clientId: auditEvents.clientId,
  // host() gives the bare address, the same text on every driver.
  ip: sql<string | null>`host(${auditEvents.ip})`,
  userAgent: auditEvents.userAgent,
  requestId: auditEvents.requestId,
  details: auditEvents.details,
};

/** A row to insert, as the audit service builds it (secrets already stripped). */
export type AuditEventInsert = typeof auditEvents.$inferInsert;

/** Rows strictly after `after` in the (occurred_at, id) descending order of every audit list. */
export function olderThan(after: Cursor | undefined): SQL | undefined {
  if (!after) return undefined;
  const at = sql`${after.key}::timestamptz`;
  return or(lt(auditEvents.occurredAt, at), and(eq(auditEvents.occurredAt, at), lt(auditEvents.id, after.id)));
}

function conditionsOf(filter: AuditEventFilter): SQL[] {
  const conditions: SQL[] = [];
  if (filter.types) conditions.push(filter.types.length ? inArray(auditEvents.type, filter.types) : sql`false`);
  if (filter.outcome) conditions.push(eq(auditEvents.outcome, filter.outcome));
  if (filter.actorId) conditions.push(eq(auditEvents.actorId, filter.actorId));
  if (filter.subjectId) conditions.push(eq(auditEvents.subjectId, filter.subjectId));
  if (filter.clientId) conditions.push(eq(auditEvents.clientId, filter.clientId));
  if (filter.ip) conditions.push(sql`${auditEvents.ip} <<= ${filter.ip}::inet`);
  if (filter.from) conditions.push(gte(auditEvents.occurredAt, sql`${filter.from}::timestamptz`));
  if (filter.to) conditions.push(lt(auditEvents.occurredAt, sql`${filter.to}::timestamptz`));
  return conditions;
}

/** An insert row as jsonb_to_recordset reads it (snake_case keys; no time: the database's now()). */
function auditRecordOf(row: AuditEventInsert): Record<string, unknown> {
  return {
    occurred_at: row.occurredAt ?? null,
    type: row.type,
    outcome: row.outcome,
    actor_type: row.actorType,
    actor_id: row.actorId ?? null,
    subject_type: row.subjectType ?? null,
    subject_id: row.subjectId ?? null,
    client_id: row.clientId ?? null,
    ip: row.ip ?? null,
    user_agent: row.userAgent ?? null,
    request_id: row.requestId ?? null,
    details: row.details ?? {},
  };
}

function insertRowsStatement(rowsJson: string): SQL {
  return sql`insert into ${auditEvents} (occurred_at, type, outcome, actor_type, actor_id, subject_type, subject_id, client_id, ip, user_agent, request_id, details)
    select coalesce(r.occurred_at, now()), r.type, r.outcome, r.actor_type, r.actor_id, r.subject_type, r.subject_id, r.client_id, r.ip, r.user_agent, r.request_id, r.details
    from jsonb_to_recordset(${rowsJson}::jsonb) as r(occurred_at timestamptz, type text, outcome text, actor_type text, actor_id text, subject_type text,
      subject_id text, client_id text, ip inet, user_agent text, request_id text, details jsonb)`;
}

export function createAuditLogQueries(db: DbOrTx) {
  return {
    /**
     * One multi-row INSERT: the audit service batches the events of a tick into it. The rows travel as one JSON
     * array parameter expanded by jsonb_to_recordset, so the statement text is the same whatever the batch size
     * (the driver prepares it once per connection) and no per-value query building runs on the request path.
     */
    async insertAuditEvents(rows: AuditEventInsert[]): Promise<void> {
      if (!rows.length) return;
      await db.execute(insertRowsStatement(JSON.stringify(rows.map(auditRecordOf))));
    },
    /** `limit + 1` rows after `after` (a cursor of this order), newest first. */
    async listAuditEvents(filter: AuditEventFilter, limit: number, after: Cursor | undefined): Promise<AuditEventRow[]> {
      return db
        .select({ ...auditEventColumns, sealId: coveringSeal })
        .from(auditEvents)
        .where(and(...conditionsOf(filter), olderThan(after)))
        .orderBy(desc(auditEvents.occurredAt), desc(auditEvents.id))
        .limit(limit + 1);
    },
    async findAuditEventById(id: string): Promise<AuditEventRow | undefined> {
      const [row] = await db
        .select({ ...auditEventColumns, sealId: coveringSeal })
        .from(auditEvents)
        .where(eq(auditEvents.id, id))
        .limit(1);
      return row;
    },
  };
}
export type AuditLogQueries = ReturnType<typeof createAuditLogQueries>;
