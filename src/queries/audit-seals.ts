/**
 * Seals over the audit log and the key that signs them. Rows are addressed by their seal key
 * (tx_id, seq): a seal covers the rows above the previous seal's upper key up to its own upper key.
 */
import { and, asc, desc, eq, gte, lte, sql } from 'drizzle-orm';
import { selectRows, type DbOrTx } from '../db/client.js';
import { auditEvents, auditSeals, auditSigningKeys } from '../db/schema/index.js';
import { auditEventColumns, type AuditEventRow } from './audit-log.js';

export type AuditSealRow = typeof auditSeals.$inferSelect;
export type AuditSigningKeyRow = typeof auditSigningKeys.$inferSelect;
export type AuditSealSummary = Omit<AuditSealRow, 'rowIds' | 'rowDigests'>;

/** A position in seal order; `{ tx: 0, seq: 0 }` is below every row. */
export interface SealKey {
  tx: number;
  seq: number;
}

/** Fixed advisory-lock key of the sealing job ("aseal" in ASCII). */
const SEAL_LOCK_KEY = 0x617365616c;
/** Fixed advisory-lock key serializing the creation of the audit signing key ("akey"). */
const KEY_LOCK_KEY = 0x616b6579;

const summaryColumns = {
  id: auditSeals.id,
  sealedAt: auditSeals.sealedAt,
  lowerTx: auditSeals.lowerTx,
  lowerSeq: auditSeals.lowerSeq,
  upperTx: auditSeals.upperTx,
  upperSeq: auditSeals.upperSeq,
  firstSeq: auditSeals.firstSeq,
  lastSeq: auditSeals.lastSeq,
  rowCount: auditSeals.rowCount,
  digest: auditSeals.digest,
  previousDigest: auditSeals.previousDigest,
  kid: auditSeals.kid,
  signature: auditSeals.signature,
};

const above = (key: SealKey) => sql`(${auditEvents.txId}, ${auditEvents.seq}) > (${key.tx}, ${key.seq})`;

export function createAuditSealQueries(db: DbOrTx) {
  return {
    /** Only one sealer at a time across replicas, for the rest of the transaction; false if another holds it. */
    async tryLockSealing(): Promise<boolean> {
      const [row] = await selectRows<{ locked: boolean }>(db, sql`select pg_try_advisory_xact_lock(${SEAL_LOCK_KEY}) as locked`);
      return row?.locked === true;
    },
    /**
     * The oldest transaction still running (or the next to start): every transaction with a smaller id has
     * ended, so its rows are visible now and no row with a smaller tx_id can appear any more.
     */
    async findSealHorizon(): Promise<number> {
      const [row] = await selectRows<{ horizon: string }>(db, sql`select pg_snapshot_xmin(pg_current_snapshot())::text as horizon`);
      if (!row) throw new Error('no snapshot');
      return Number(row.horizon);
    },
    /** Rows above `lower` written by transactions below `horizon`, in seal order; at most `limit`. */
    async findRowsToSeal(lower: SealKey, horizon: number, limit: number): Promise<AuditEventRow[]> {
      return db
        .select({ ...auditEventColumns, sealId: sql<null>`null` })
        .from(auditEvents)
        .where(and(above(lower), sql`${auditEvents.txId} < ${horizon}`))
        .orderBy(asc(auditEvents.txId), asc(auditEvents.seq))
        .limit(limit);
    },
    /** Every row a seal's range holds now (lower exclusive, upper inclusive), in seal order. */
    async findRowsInRange(lower: SealKey, upper: SealKey): Promise<AuditEventRow[]> {
      return db
        .select({ ...auditEventColumns, sealId: sql<null>`null` })
        .from(auditEvents)
        .where(and(above(lower), sql`(${auditEvents.txId}, ${auditEvents.seq}) <= (${upper.tx}, ${upper.seq})`))
        .orderBy(asc(auditEvents.txId), asc(auditEvents.seq));
    },
    /** Rows above the newest seal (written since, or not yet sealable). */
    async countRowsAbove(lower: SealKey): Promise<number> {
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(auditEvents).where(above(lower));
      return row?.n ?? 0;
    },
    async findLastSeal(): Promise<AuditSealSummary | undefined> {
      const [row] = await db.select(summaryColumns).from(auditSeals).orderBy(desc(auditSeals.id)).limit(1);
      return row;
    },
    async findSealById(id: number): Promise<AuditSealRow | undefined> {
      const [row] = await db.select().from(auditSeals).where(eq(auditSeals.id, id)).limit(1);
      return row;
    },
    /** Seals from `fromId` on in chain order, at most `limit` (with their row lists). */
    async findSealsFrom(fromId: number, limit: number): Promise<AuditSealRow[]> {
      return db.select().from(auditSeals).where(gte(auditSeals.id, fromId)).orderBy(asc(auditSeals.id)).limit(limit);
    },
    /** Seals with ids in [fromId, toId], in chain order, at most `limit`. */
    async findSealsBetween(fromId: number, toId: number, limit: number): Promise<AuditSealRow[]> {
      return db
        .select()
        .from(auditSeals)
        .where(and(gte(auditSeals.id, fromId), lte(auditSeals.id, toId)))
        .orderBy(asc(auditSeals.id))
        .limit(limit);
    },
    /** `limit + 1` seal summaries below `beforeId`, newest first. */
    async listSeals(limit: number, beforeId: number | undefined): Promise<AuditSealSummary[]> {
      return db
        .select(summaryColumns)
        .from(auditSeals)
        .where(beforeId === undefined ? undefined : sql`${auditSeals.id} < ${beforeId}`)
        .orderBy(desc(auditSeals.id))
        .limit(limit + 1);
    },
    async insertSeal(row: typeof auditSeals.$inferInsert): Promise<void> {
      await db.insert(auditSeals).values(row);
    },
    async findSealIdByDigest(digest: string): Promise<number | undefined> {
      const [row] = await db.select({ id: auditSeals.id }).from(auditSeals).where(eq(auditSeals.digest, digest)).limit(1);
      return row?.id;
    },

    // ---- the audit signing key
    async findAuditSigningKeys(): Promise<AuditSigningKeyRow[]> {
      return db.select().from(auditSigningKeys).orderBy(asc(auditSigningKeys.createdAt), asc(auditSigningKeys.kid));
    },
    /** Serializes key creation across replicas for the rest of the transaction. */
    async lockAuditSigningKeys(): Promise<void> {
      await db.execute(sql`select pg_advisory_xact_lock(${KEY_LOCK_KEY})`);
    },
    async insertAuditSigningKey(row: typeof auditSigningKeys.$inferInsert): Promise<void> {
      await db.insert(auditSigningKeys).values(row);
    },
  };
}
export type AuditSealQueries = ReturnType<typeof createAuditSealQueries>;
