/**
 * Managing OAuth clients from the management API and the admin pages: list, show, register, replace, delete,
 * rotate the secret, and a service account's roles. One validator for every way in (services/clients.ts:
 * the CLI and the bootstrap file use the same schema and oidc-provider's own check).
 *
 * Contracts:
 * - A secret leaves only once: in the answer that created it (registration, rotation, or an update that turns
 *   a public client confidential). Listings and views say only whether there is one; the table holds digests.
 * - Rotation keeps the replaced secret working for `secretGracePeriod` seconds (RFC 6749 §2.3.1 leaves
 *   rotation to the server): the client's deployments move over without an outage, then the old secret stops.
 *   At most one previous secret: rotating again during the grace period ends the older one at once.
 * - Every replica sees a change at once: a trigger on `clients` sends NOTIFY on commit (migration 0010) and each
 *   replica's client cache drops the entry (services/client-cache.ts).
 * - Deleting a client revokes its grants (tombstoned, so a token written a moment later dies too) and every
 *   stored token issued to it, in the same transaction as the delete.
 * - No escalation through a client: changing, rotating or deleting a client that holds roles needs the right
 *   to assign all of them (else taking its secret would take its permissions); its roles change through the
 *   rbac write path and its rules.
 * - Every outcome is audited: success after the commit, refusals (bad metadata, escalation) as failures.
 */
import { ZodError } from 'zod';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import { addSeconds, type Clock } from '../../lib/clock.js';
import { hmacDigest, randomToken } from '../../lib/crypto.js';
import { decodeTimeCursor, toPage, type Page, type PageRequest } from '../../lib/pagination.js';
import { createClientQueries, type ClientListing } from '../../queries/clients.js';
import { createOidcSessionQueries } from '../../queries/oidc-sessions.js';
import { ACCOUNT_CLIENT_ID } from '../account/relying-party.js';
import type { AuditEvent, AuditService } from '../audit.js';
import { assertProviderAccepts, CLIENT_ID_PATTERN, clientInputSchema, clientUpdateSchema, toMetadata, type ClientRegistration } from '../clients.js';
import type { Actor, RbacService } from '../rbac/service.js';

/** A client as management shows it: RFC 7591 §2 metadata (never a secret), whether it has a secret, and until when
 * the secret replaced by the last rotation is still accepted (null: none is). */
export type ManagedClient = Omit<ClientListing, 'cursorKey'>;

/** An answer that carries a secret: shown to the caller once, never stored or logged in the clear. */
export interface ClientWithSecret {
  client: ManagedClient;
  /** Present when this call generated a secret (a confidential client registered or made confidential). */
  clientSecret: string | undefined;
}

export interface RotatedSecret {
  client: ManagedClient;
  clientSecret: string;
  /** Until when the replaced secret keeps working (null when the grace period is 0). */
  previousSecretExpiresAt: Date | null;
}

export interface ClientRoleAssignment {
  roleId: string;
  role: string;
  createdAt: Date;
}

export interface ClientListRequest extends PageRequest {
  /** Matches the client id or `client_name`, case-insensitively. */
  search?: string | undefined;
}

export interface ClientManagementDeps {
  db: Db;
  audit: AuditService;
  clock: Clock;
  registration: ClientRegistration;
  rbac: Pick<RbacService, 'assignClientRole' | 'unassignClientRole' | 'listClientRoles' | 'assertManagesClient' | 'notifyChanged'>;
  /** Seconds a replaced secret keeps working after a rotation (0: it stops at once). */
  secretGracePeriod: number;
  /** Seconds a revoked grant's tombstone is kept: the longest lifetime of any token issued under a grant. */
  tombstoneTtl: number;
}

const notFound = () => new AppError('not_found', 'client not found', 404);
const needsSecret = (method: unknown) => method === 'client_secret_basic' || method === 'client_secret_post';
const isClientId = (id: string) => CLIENT_ID_PATTERN.test(id);

function managed({ cursorKey: _cursorKey, ...client }: ClientListing): ManagedClient {
  return client;
}

export function createClientManagement(deps: ClientManagementDeps) {
  const { db, clock, registration } = deps;
  const queries = createClientQueries(db);
  const digest = (secret: string) => hmacDigest(registration.secretKey, secret);

  const event = (actor: Actor, type: AuditEvent['type'], clientId: string, outcome: AuditEvent['outcome'], details: Record<string, unknown>): AuditEvent => ({
    type,
    outcome,
    actor: actor.audit,
    subject: { type: 'client', id: clientId },
    clientId,
    context: actor.context,
    details,
  });

  /** Runs `work`; a refusal the caller can fix (bad metadata, escalation, conflict) is audited as a failure, then thrown. */
  async function audited<T>(actor: Actor, type: AuditEvent['type'], clientId: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const refusal = err instanceof ZodError ? { reason: 'invalid_metadata', field: err.issues[0]?.path.join('.') ?? '' } : err instanceof AppError && [400, 403, 409].includes(err.status) ? { reason: err.code, message: err.message } : undefined;
      if (refusal) await deps.audit.record(event(actor, type, clientId, 'failure', refusal));
      throw err;
    }
  }

  /** A placeholder stands in for a secret the provider wants to see but that we hold only as a digest. */
  const providerAccepts = (clientId: string, metadata: Record<string, unknown>) =>
    assertProviderAccepts(registration, clientId, metadata, needsSecret(metadata.token_endpoint_auth_method) ? randomToken(32) : undefined);

  async function existing(clientId: string): Promise<ClientListing> {
    const row = isClientId(clientId) ? await queries.findClientListing(clientId) : undefined;
    if (!row) throw notFound();
    return row;
  }

  /** The account pages' own client is kept in step with the issuer at start-up: it is not managed here. */
  function assertNotBuiltIn(clientId: string): void {
    if (clientId === ACCOUNT_CLIENT_ID) throw new AppError('conflict', `${ACCOUNT_CLIENT_ID} is built in: it follows the issuer and cannot be changed or deleted`, 409);
  }

  async function getClient(clientId: string): Promise<ManagedClient> {
    return managed(await existing(clientId));
  }

  return {
    async listClients(request: ClientListRequest): Promise<Page<ManagedClient>> {
      const rows = await queries.listClients(request.limit + 1, decodeTimeCursor(request.cursor, isClientId), request.search);
      const page = toPage(rows, request.limit, (r) => ({ key: r.cursorKey, id: r.clientId }));
      return { items: page.items.map(managed), next_cursor: page.next_cursor };
    },

    getClient,

    /** Registers a client; a confidential client without a declared secret gets a generated one (256 bits), answered once. */
    async createClient(input: unknown, actor: Actor): Promise<ClientWithSecret> {
      const named = (input as { client_id?: unknown } | null)?.client_id;
      const claimedId = typeof named === 'string' && isClientId(named) ? named : '(invalid)';
      return audited(actor, 'client.created', claimedId, async () => {
        const parsed = clientInputSchema.parse(input);
        const secret = needsSecret(parsed.token_endpoint_auth_method) ? (parsed.client_secret ?? randomToken(32)) : undefined;
        const metadata = toMetadata(parsed);
        await providerAccepts(parsed.client_id, metadata);
        if (!(await queries.insertClientIfAbsent({ clientId: parsed.client_id, metadata, clientSecretDigest: secret ? digest(secret) : null }))) {
          throw new AppError('conflict', `client ${parsed.client_id} already exists`, 409);
        }
        await deps.audit.record(event(actor, 'client.created', parsed.client_id, 'success', { metadata, credential_generated: secret !== undefined && parsed.client_secret === undefined }));
        return { client: await getClient(parsed.client_id), clientSecret: parsed.client_secret === undefined ? secret : undefined };
      });
    },

    /**
     * Replaces a client's metadata (RFC 7592 §2.2 style: the whole document). The secret is not part of it:
     * a confidential client keeps its secret; one that becomes confidential gets a generated secret, answered once;
     * one that stops using a secret loses it (and any previous one).
     */
    async updateClient(clientId: string, input: unknown, actor: Actor): Promise<ClientWithSecret> {
      const before = await existing(clientId);
      return audited(actor, 'client.updated', clientId, async () => {
        assertNotBuiltIn(clientId);
        await deps.rbac.assertManagesClient(clientId, actor, 'changing');
        const parsed = clientUpdateSchema.parse(input);
        const metadata = toMetadata(parsed);
        await providerAccepts(clientId, metadata);
        const generated = needsSecret(parsed.token_endpoint_auth_method) && !before.hasSecret ? randomToken(32) : undefined;
        const secretChange = !needsSecret(parsed.token_endpoint_auth_method)
          ? { clientSecretDigest: null, previousSecretDigest: null, previousSecretExpiresAt: null }
          : generated
            ? { clientSecretDigest: digest(generated) }
            : {};
        if (!(await queries.updateClient(clientId, { metadata, ...secretChange }))) throw notFound();
        await deps.audit.record(
          event(actor, 'client.updated', clientId, 'success', {
            before: before.metadata,
            after: metadata,
            credential_generated: generated !== undefined,
            credential_removed: before.hasSecret && !needsSecret(parsed.token_endpoint_auth_method),
          }),
        );
        return { client: await getClient(clientId), clientSecret: generated };
      });
    },

    /** Deletes a client, its role assignments, its grants (tombstoned) and every stored token issued to it, in one transaction. */
    async deleteClient(clientId: string, actor: Actor): Promise<{ revokedGrants: number; deletedTokens: number }> {
      const before = await existing(clientId);
      return audited(actor, 'client.deleted', clientId, async () => {
        assertNotBuiltIn(clientId);
        await deps.rbac.assertManagesClient(clientId, actor, 'deleting');
        const now = clock();
        const outcome = await db.transaction(async (tx) => {
          const q = createClientQueries(tx);
          if (!(await q.deleteClient(clientId))) throw notFound();
          const grantIds = await q.findOidcGrantIdsByClient(clientId);
          await createOidcSessionQueries(tx).revokeGrants(grantIds, addSeconds(now, deps.tombstoneTtl));
          const deletedTokens = await q.deleteOidcArtefactsByClient(clientId);
          await q.deactivateOidcGrantMirrors(grantIds, now);
          return { revokedGrants: grantIds.length, deletedTokens };
        });
        // Its role assignments went with it (ON DELETE CASCADE): every replica's decision cache must forget them.
        await deps.rbac.notifyChanged();
        await deps.audit.record(event(actor, 'client.deleted', clientId, 'success', { metadata: before.metadata, revoked_grants: outcome.revokedGrants, deleted_artefacts: outcome.deletedTokens }));
        return outcome;
      });
    },

    /** A new secret (256 bits), answered once; the replaced one keeps working until the grace period ends. */
    async rotateClientSecret(clientId: string, actor: Actor): Promise<RotatedSecret> {
      const before = await existing(clientId);
      return audited(actor, 'client.secret_rotated', clientId, async () => {
        assertNotBuiltIn(clientId);
        if (!before.hasSecret) throw new AppError('invalid_request', `token_endpoint_auth_method: a client using ${String(before.metadata.token_endpoint_auth_method)} has no secret to rotate`);
        await deps.rbac.assertManagesClient(clientId, actor, 'rotating the secret of');
        const secret = randomToken(32);
        const previousSecretExpiresAt = deps.secretGracePeriod > 0 ? addSeconds(clock(), deps.secretGracePeriod) : null;
        if (!(await queries.rotateClientSecret(clientId, digest(secret), previousSecretExpiresAt))) throw notFound();
        await deps.audit.record(event(actor, 'client.secret_rotated', clientId, 'success', { previous_valid_until: previousSecretExpiresAt?.toISOString() ?? null }));
        return { client: await getClient(clientId), clientSecret: secret, previousSecretExpiresAt };
      });
    },

    /** A service account's roles (404 for an unknown client). */
    async listClientRoles(clientId: string): Promise<ClientRoleAssignment[]> {
      if (!isClientId(clientId)) throw notFound();
      return deps.rbac.listClientRoles(clientId);
    },

    /** Gives a client a role through the rbac write path (no escalation); false when it held it already. */
    async assignClientRole(clientId: string, role: string, actor: Actor): Promise<boolean> {
      if (!isClientId(clientId)) throw notFound();
      return audited(actor, 'role.assigned', clientId, () => deps.rbac.assignClientRole(clientId, role, actor));
    },

    async unassignClientRole(clientId: string, roleId: string, actor: Actor): Promise<void> {
      if (!isClientId(clientId)) throw notFound();
      await audited(actor, 'role.unassigned', clientId, () => deps.rbac.unassignClientRole(clientId, roleId, actor));
    },
  };
}
export type ClientManagement = ReturnType<typeof createClientManagement>;
