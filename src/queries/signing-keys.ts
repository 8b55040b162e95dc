import { asc, gt, isNull, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { signingKeys } from '../db/schema/index.js';

export type SigningKeyRow = typeof signingKeys.$inferSelect;

/** Published at `at`: not yet past its retirement. */
const publishedAt = (at: Date) => or(isNull(signingKeys.retiresAt), gt(signingKeys.retiresAt, at));

export function createSigningKeyQueries(db: DbOrTx) {
  return {
    /** Keys still to be published (not yet past retirement), oldest first. */
    async findPublishedSigningKeys(at: Date): Promise<SigningKeyRow[]> {
      return db
        .select()
        .from(signingKeys)
        .where(publishedAt(at))
        .orderBy(asc(signingKeys.activatesAt), asc(signingKeys.createdAt));
    },
    /** The published keys without their private parts: enough to tell whether anything changed. */
    async findSigningKeyStates(at: Date): Promise<Array<Pick<SigningKeyRow, 'kid' | 'alg' | 'activatesAt' | 'createdAt'>>> {
      return db
        .select({ kid: signingKeys.kid, alg: signingKeys.alg, activatesAt: signingKeys.activatesAt, createdAt: signingKeys.createdAt })
        .from(signingKeys)
        .where(publishedAt(at));
    },
    async insertSigningKeys(rows: Array<typeof signingKeys.$inferInsert>): Promise<void> {
      if (rows.length) await db.insert(signingKeys).values(rows);
    },
    /** Schedules the retirement of every key that has no retirement yet. */
    async retireCurrentSigningKeys(retiresAt: Date): Promise<number> {
      const rows = await db.update(signingKeys).set({ retiresAt }).where(isNull(signingKeys.retiresAt)).returning({ kid: signingKeys.kid });
      return rows.length;
    },
    async countSigningKeys(): Promise<number> {
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(signingKeys);
      return row?.n ?? 0;
    },
    /** Serializes key generation across replicas for the rest of the transaction. */
    async lockSigningKeys(): Promise<void> {
      await db.execute(sql`select pg_advisory_xact_lock(${SIGNING_KEYS_LOCK_KEY})`);
    },
  };
}
export type SigningKeyQueries = ReturnType<typeof createSigningKeyQueries>;

/** Fixed advisory-lock key for signing-key generation ("keys" in ASCII). */
const SIGNING_KEYS_LOCK_KEY = 0x6b657973;
