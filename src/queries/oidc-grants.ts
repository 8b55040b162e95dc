/**
 * The applications a user has granted access to: the live grants oidc-provider holds (`oidc_payloads`, model
 * `Grant`: the truth about what was granted), with their mirror row in `auth_tokens` (kind `oidc_grant`: the
 * id the owner's token list revokes by, and when it was created and last used) and the client's metadata.
 */
import { and, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { authTokens, clients, oidcPayloads } from '../db/schema/index.js';

export interface GrantListing {
  /** The mirror row's id (what the token list revokes). */
  tokenId: string;
  clientId: string;
  /** The client's registered metadata (`client_name` ...); absent when the client was deleted. */
  clientMetadata: Record<string, unknown> | null;
  /** oidc-provider's Grant: `openid.scope` and `resources` (resource indicator → scope string). */
  payload: Record<string, unknown>;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export function createOidcGrantQueries(db: DbOrTx) {
  return {
    /** Active, unexpired grants of the account that the provider still holds, oldest first. */
    async listLiveGrantsByAccount(accountId: string, now: Date): Promise<GrantListing[]> {
      return db
        .select({
          tokenId: authTokens.id,
          clientId: sql<string>`${oidcPayloads.payload} ->> 'clientId'`,
          clientMetadata: clients.metadata,
          payload: oidcPayloads.payload,
          createdAt: authTokens.createdAt,
          lastUsedAt: authTokens.lastUsedAt,
        })
        .from(authTokens)
        .innerJoin(oidcPayloads, and(eq(oidcPayloads.model, 'Grant'), eq(oidcPayloads.id, authTokens.reference), eq(oidcPayloads.accountId, accountId)))
        .leftJoin(clients, eq(clients.clientId, sql`${oidcPayloads.payload} ->> 'clientId'`))
        .where(
          and(
            eq(authTokens.userId, accountId),
            eq(authTokens.kind, 'oidc_grant'),
            eq(authTokens.isActive, true),
            or(isNull(oidcPayloads.expiresAt), gt(oidcPayloads.expiresAt, now)),
          ),
        )
        .orderBy(authTokens.createdAt, authTokens.id);
    },
  };
}
