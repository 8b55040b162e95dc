import { and, desc, eq, ilike, inArray, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { authTokens, clients, oidcPayloads, resourceServers } from '../db/schema/index.js';
import type { Cursor } from '../lib/pagination.js';
import { likeEscape } from './rbac.js';

export type ClientRow = typeof clients.$inferSelect;
export type ResourceServerRow = typeof resourceServers.$inferSelect;

/** What client authentication and the provider need of a client: its metadata and the stored secret digest. */
export interface ClientAuthRecord {
  /**
   * The metadata oidc-provider needs. `client_secret` carries the stored digest, never a plaintext
   * secret: the provider's secret comparison is replaced to compare digests (services/clients.ts `clientSecretAccepted`).
   */
  metadata: Record<string, unknown>;
  /** The stored HMAC digest of the client's secret (confidential clients only). */
  digest: string | undefined;
  /** After a rotation: the replaced secret's digest, accepted until `previousExpiresAt`. */
  previousDigest?: string | undefined;
  previousExpiresAt?: Date | undefined;
}

/** A client as management lists it: never a secret or a digest, only whether there is one. */
export interface ClientListing {
  clientId: string;
  metadata: Record<string, unknown>;
  hasSecret: boolean;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** `created_at` as RFC 3339 with the database's microseconds (the page cursor's key). */
  cursorKey: string;
}

const listingColumns = {
  clientId: clients.clientId,
  metadata: clients.metadata,
  hasSecret: sql<boolean>`${clients.clientSecretDigest} is not null`,
  previousSecretExpiresAt: clients.previousSecretExpiresAt,
  createdAt: clients.createdAt,
  updatedAt: clients.updatedAt,
  cursorKey: sql<string>`to_char(${clients.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
};

export function createClientQueries(db: DbOrTx) {
  // Every token request looks its client up: built once, run as a prepared statement.
  const metadataById = db
    .select({
      metadata: clients.metadata,
      digest: clients.clientSecretDigest,
      previousDigest: clients.previousSecretDigest,
      previousExpiresAt: clients.previousSecretExpiresAt,
    })
    .from(clients)
    .where(eq(clients.clientId, sql.placeholder('clientId')))
    .limit(1)
    .prepare('keryu_client_metadata_by_id');
  async function findClientAuthRecord(clientId: string): Promise<ClientAuthRecord | undefined> {
    const [row] = await metadataById.execute({ clientId });
    if (!row) return undefined;
    const digest = row.digest ?? undefined;
    return {
      metadata: { ...row.metadata, client_id: clientId, ...(digest ? { client_secret: digest } : {}) },
      digest,
      previousDigest: row.previousDigest ?? undefined,
      previousExpiresAt: row.previousExpiresAt ?? undefined,
    };
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
    /** Newest first, after the cursor's (created_at, client_id); `search` matches the client id or name. */
    async listClients(limit: number, after: Cursor | undefined, search?: string): Promise<ClientListing[]> {
      const term = search ? `%${likeEscape(search)}%` : undefined;
      return db
        .select(listingColumns)
        .from(clients)
        .where(
          and(
            term ? or(ilike(clients.clientId, term), ilike(sql`${clients.metadata} ->> 'client_name'`, term)) : undefined,
            after ? sql`(${clients.createdAt}, ${clients.clientId}) < (${after.key}::timestamptz, ${after.id})` : undefined,
          ),
        )
        .orderBy(desc(clients.createdAt), desc(clients.clientId))
        .limit(limit);
    },
    async findClientListing(clientId: string): Promise<ClientListing | undefined> {
      const [row] = await db.select(listingColumns).from(clients).where(eq(clients.clientId, clientId)).limit(1);
      return row;
    },
    /**
     * Replaces the secret in one statement: the current digest becomes the previous one, accepted until
     * `previousExpiresAt` (null: not at all). Two rotations at once are serialized by the row lock; the later
     * one's predecessor is the earlier one's new secret.
     */
    async rotateClientSecret(clientId: string, digest: string, previousExpiresAt: Date | null): Promise<boolean> {
      const rows = await db
        .update(clients)
        .set({
          clientSecretDigest: digest,
          previousSecretDigest: previousExpiresAt ? sql`${clients.clientSecretDigest}` : null,
          previousSecretExpiresAt: previousExpiresAt,
          updatedAt: sql`now()`,
        })
        .where(and(eq(clients.clientId, clientId), sql`${clients.clientSecretDigest} is not null`))
        .returning({ clientId: clients.clientId });
      return rows.length > 0;
    },
    /** Deletes the client (its role assignments go with it, ON DELETE CASCADE); the trigger tells every replica's cache. */
    async deleteClient(clientId: string): Promise<boolean> {
      const rows = await db.delete(clients).where(eq(clients.clientId, clientId)).returning({ clientId: clients.clientId });
      return rows.length > 0;
    },
    /** The ids of the provider grants issued to the client (oidc-provider's Grant payload names its `clientId`). */
    async findOidcGrantIdsByClient(clientId: string): Promise<string[]> {
      const rows = await db
        .select({ id: oidcPayloads.id })
        .from(oidcPayloads)
        .where(and(eq(oidcPayloads.model, 'Grant'), sql`${oidcPayloads.payload} ->> 'clientId' = ${clientId}`));
      return rows.map((r) => r.id);
    },
    /** Deletes every stored provider artefact issued to the client, with or without a grant (client credentials tokens have none). */
    async deleteOidcArtefactsByClient(clientId: string): Promise<number> {
      const rows = await db
        .delete(oidcPayloads)
        .where(and(sql`${oidcPayloads.model} <> 'Session'`, sql`${oidcPayloads.payload} ->> 'clientId' = ${clientId}`))
        .returning({ id: oidcPayloads.id });
      return rows.length;
    },
    /** Marks the mirror rows of revoked grants (the account's list of apps) as revoked. */
    async deactivateOidcGrantMirrors(grantIds: string[], at: Date): Promise<void> {
      if (!grantIds.length) return;
      await db
        .update(authTokens)
        .set({ isActive: false, revokedAt: at })
        .where(and(eq(authTokens.kind, 'oidc_grant'), inArray(authTokens.reference, grantIds), eq(authTokens.isActive, true)));
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
