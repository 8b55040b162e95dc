/**
 * What deleting a client takes with it, counted before the administrator confirms: its live grants (and how
 * many accounts granted it access) and the live tokens issued to it. Read-only; the caller has found the
 * client first (the management service answers 404 for an unknown one).
 */
import type { DbOrTx } from '../../db/client.js';
import { createClientUsageQueries, type ClientUsageCounts } from '../../queries/client-usage.js';

export type { ClientUsageCounts };

export function createClientUsage(deps: { db: DbOrTx }) {
  const queries = createClientUsageQueries(deps.db);
  return {
    countClientUsage: (clientId: string): Promise<ClientUsageCounts> => queries.countClientUsage(clientId),
  };
}
export type ClientUsage = ReturnType<typeof createClientUsage>;
