/**
 * What a client holds in the provider's store (`oidc_payloads`): its live grants, the accounts behind them, and
 * the live artefacts issued to it (access, refresh and client-credentials tokens, codes). Read-only: the page
 * confirming a client's deletion shows these counts before anything goes (the deletion itself is in
 * services/clients/management.ts). The client is named inside the payload, so these scan by JSON field; they
 * run on an administrator's request, never on a hot path.
 */
import { and, eq, gt, isNull, ne, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { oidcPayloads } from '../db/schema/index.js';

export interface ClientUsageCounts {
  grants: number;
  accounts: number;
  tokens: number;
}

export function createClientUsageQueries(db: DbOrTx) {
  return {
    async countClientUsage(clientId: string): Promise<ClientUsageCounts> {
      // Live as the provider's adapter judges it (oidc/adapter.ts): unexpired by the database's clock, which
      // is the clock its expiry times were written against.
      const live = and(sql`${oidcPayloads.payload} ->> 'clientId' = ${clientId}`, or(isNull(oidcPayloads.expiresAt), gt(oidcPayloads.expiresAt, sql`now()`)));
      const [grants] = await db
        .select({ grants: sql<number>`count(*)::int`, accounts: sql<number>`count(distinct ${oidcPayloads.accountId})::int` })
        .from(oidcPayloads)
        .where(and(eq(oidcPayloads.model, 'Grant'), live));
      const [tokens] = await db
        .select({ tokens: sql<number>`count(*)::int` })
        .from(oidcPayloads)
        .where(and(ne(oidcPayloads.model, 'Grant'), ne(oidcPayloads.model, 'Session'), isNull(oidcPayloads.consumedAt), live));
      return { grants: grants?.grants ?? 0, accounts: grants?.accounts ?? 0, tokens: tokens?.tokens ?? 0 };
    },
  };
}
