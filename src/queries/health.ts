/** The cheapest round trip that proves the database answers: readiness runs it. */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';

export function createHealthQueries(db: Db) {
  return {
    async pingDatabase(): Promise<void> {
      await db.execute(sql`select 1`);
    },
  };
}
export type HealthQueries = ReturnType<typeof createHealthQueries>;
