/**
 * Helpers for the audit log tests: seal everything written so far, and tamper as a database superuser.
 */
import { sql } from 'drizzle-orm';
import { selectRows, type Db } from '../../src/db/client.js';
import type { AuditSealService } from '../../src/services/audit-seal/service.js';

/** Rows written up to now that no seal covers yet. */
async function unsealedUpTo(db: Db, maxSeq: number): Promise<number> {
  const [row] = await selectRows<{ n: number }>(
    db,
    sql`select count(*)::int as n from audit_events e
        where e.seq <= ${maxSeq}
          and not exists (select 1 from audit_seals s where (s.upper_tx, s.upper_seq) >= (e.tx_id, e.seq))`,
  );
  return row?.n ?? 0;
}

/**
 * Seals until every row written before the call is sealed. Sealing waits for the transactions running in the
 * whole PostgreSQL cluster (other tests' included) to end, so this polls instead of sealing once.
 */
export async function sealAll(db: Db, seals: Pick<AuditSealService, 'sealPending'>, timeoutMs = 30_000): Promise<void> {
  const [top] = await selectRows<{ seq: number | null }>(db, sql`select max(seq)::int as seq from audit_events`);
  const maxSeq = top?.seq ?? 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await seals.sealPending();
    if ((await unsealedUpTo(db, maxSeq)) === 0) return;
    if (Date.now() > deadline) throw new Error('rows stayed unsealed');
    await new Promise((r) => setTimeout(r, 50));
  }
}
