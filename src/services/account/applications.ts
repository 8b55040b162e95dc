/**
 * The applications a person has granted access to (OIDC clients holding a grant), one entry per client with
 * the scopes granted, and removing an application's access: each of its grants is revoked through the token
 * list (`updateToken` with is_active false, exactly as `PUT /api/auth/tokens/:id/` does), which tombstones
 * the grant so its refresh and access tokens die with it. The account pages' own client is the person
 * managing their account, not an application, and is neither listed nor removable here.
 */
import { AppError } from '../../errors/index.js';
import type { Clock } from '../../lib/clock.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { Db } from '../../db/client.js';
import { createOidcGrantQueries, type GrantListing } from '../../queries/oidc-grants.js';
import type { SessionService } from '../sessions.js';
import { ACCOUNT_CLIENT_ID } from './relying-party.js';

export interface GrantedApplication {
  clientId: string;
  name: string;
  /** OpenID Connect scopes granted (`openid profile email` ...). */
  scopes: string[];
  /** Scopes granted at resource servers (RFC 8707), by resource indicator. */
  resources: Array<{ resource: string; scopes: string[] }>;
  /** The first grant's creation. */
  grantedAt: Date;
  lastUsedAt: Date | null;
  /** How many grants (one per browser sign-in) the client holds. */
  grants: number;
}

const words = (value: unknown) => (typeof value === 'string' ? value.split(' ').filter(Boolean) : []);

function scopesOf(payload: Record<string, unknown>) {
  const openid = payload.openid as { scope?: unknown } | undefined;
  const resources = (payload.resources ?? {}) as Record<string, unknown>;
  return { scopes: words(openid?.scope), resources: Object.entries(resources).map(([resource, scope]) => ({ resource, scopes: words(scope) })) };
}

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];

export function createAccountApplications(deps: { db: Db; clock: Clock; sessions: Pick<SessionService, 'updateToken'> }) {
  const grants = createOidcGrantQueries(deps.db);
  const live = async (userId: string) => (await grants.listLiveGrantsByAccount(userId, deps.clock())).filter((g) => g.clientId !== ACCOUNT_CLIENT_ID);

  /** The clients holding a live grant of the user, by name. */
  async function listApplications(userId: string): Promise<GrantedApplication[]> {
    const byClient = new Map<string, GrantedApplication>();
    for (const grant of await live(userId)) {
      const { scopes, resources } = scopesOf(grant.payload);
      const seen = byClient.get(grant.clientId);
      if (!seen) {
        byClient.set(grant.clientId, { clientId: grant.clientId, name: nameOf(grant), scopes, resources, grantedAt: grant.createdAt, lastUsedAt: grant.lastUsedAt, grants: 1 });
        continue;
      }
      seen.scopes = union(seen.scopes, scopes);
      for (const r of resources) {
        const same = seen.resources.find((s) => s.resource === r.resource);
        if (same) same.scopes = union(same.scopes, r.scopes);
        else seen.resources.push(r);
      }
      if (grant.lastUsedAt && (!seen.lastUsedAt || grant.lastUsedAt > seen.lastUsedAt)) seen.lastUsedAt = grant.lastUsedAt;
      seen.grants += 1;
    }
    return [...byClient.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  return {
    listApplications,

    /** One application of the user; a client they granted nothing (or another user's) answers 404. */
    async findApplication(userId: string, clientId: string): Promise<GrantedApplication> {
      const found = (await listApplications(userId)).find((app) => app.clientId === clientId);
      if (!found) throw new AppError('not_found', 'no such application', 404);
      return found;
    },

    /** Revokes every grant the user gave the client (and with them its tokens). 404 when there is none. */
    async removeApplication(userId: string, clientId: string, context?: RequestContext): Promise<void> {
      const own = (await live(userId)).filter((g) => g.clientId === clientId);
      if (!own.length) throw new AppError('not_found', 'no such application', 404);
      for (const grant of own) await deps.sessions.updateToken(userId, grant.tokenId, { isActive: false }, undefined, context);
    },
  };
}
export type AccountApplications = ReturnType<typeof createAccountApplications>;

function nameOf(grant: GrantListing): string {
  const name = grant.clientMetadata?.client_name;
  return typeof name === 'string' && name ? name : grant.clientId;
}
