import { eq, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { clients, resourceServers } from '../db/schema/index.js';

export type ClientRow = typeof clients.$inferSelect;
export type ResourceServerRow = typeof resourceServers.$inferSelect;

/** What client authentication and the provider need of a client: its metadata and the stored secret digest. */
export interface ClientAuthRecord {
  /**
   * The metadata oidc-provider needs. `client_secret` carries the stored digest, never a plaintext
   * secret: the provider's secret comparison is replaced to compare digests (services/clients.ts `clientSecretMatches`).
   */
  metadata: Record<string, unknown>;
  /** The stored HMAC digest of the client's secret (confidential clients only). */
  digest: string | undefined;
}

export function createClientQueries(db: DbOrTx) {
  // Every token request looks its client up: built once, run as a prepared statement.
  const metadataById = db
    .select({ metadata: clients.metadata, digest: clients.clientSecretDigest })
    .from(clients)
    .where(eq(clients.clientId, sql.placeholder('clientId')))
    .limit(1)
    .prepare('keryu_client_metadata_by_id');
  async function findClientAuthRecord(clientId: string): Promise<ClientAuthRecord | undefined> {
    const [row] = await metadataById.execute({ clientId });
    if (!row) return undefined;
    const digest = row.digest ?? undefined;
    return { metadata: { ...row.metadata, client_id: clientId, ...(digest ? { client_secret: digest } : {}) }, digest };
  }
  return {
    findClientAuthRecord,
    async findClientMetadataById(clientId: string): Promise<Record<string, unknown> | undefined> {
      return (await findClientAuthRecord(clientId))?.metadata;
    },
    async findClientSecretDigestById(clientId: string): Promise<string | undefined> {
      return (await findClientAuthRecord(clientId))?.digest;
    },
    async findClientById(clientId: string): Promise<ClientRow | undefined> {
      const [row] = await db.select().from(clients).where(eq(clients.clientId, clientId)).limit(1);
      return row;
    },
    async insertClient(values: typeof clients.$inferInsert): Promise<ClientRow> {
      const [row] = await db.insert(clients).values(values).returning();
      if (!row) throw new Error('insert returned no row');
      return row;
    },
    /** Inserts unless the client exists (another replica starting at the same moment); true when inserted. */
    async insertClientIfAbsent(values: typeof clients.$inferInsert): Promise<boolean> {
      const rows = await db.insert(clients).values(values).onConflictDoNothing().returning({ clientId: clients.clientId });
      return rows.length > 0;
    },
    async updateClient(clientId: string, values: Partial<Omit<typeof clients.$inferInsert, 'clientId'>>): Promise<ClientRow | undefined> {
      const [row] = await db
        .update(clients)
        .set({ ...values, updatedAt: sql`now()` })
        .where(eq(clients.clientId, clientId))
        .returning();
      return row;
    },
    async findResourceServer(identifier: string): Promise<ResourceServerRow | undefined> {
      const [row] = await db.select().from(resourceServers).where(eq(resourceServers.identifier, identifier)).limit(1);
      return row;
    },
    async upsertResourceServer(values: typeof resourceServers.$inferInsert): Promise<{ created: boolean; row: ResourceServerRow }> {
      const existing = await this.findResourceServer(values.identifier);
      if (!existing) {
        const [row] = await db.insert(resourceServers).values(values).returning();
        if (!row) throw new Error('insert returned no row');
        return { created: true, row };
      }
      const [row] = await db
        .update(resourceServers)
        .set({ ...values, updatedAt: sql`now()` })
        .where(eq(resourceServers.identifier, values.identifier))
        .returning();
      if (!row) throw new Error('update returned no row');
      return { created: false, row };
    },
  };
}
export type ClientQueries = ReturnType<typeof createClientQueries>;
