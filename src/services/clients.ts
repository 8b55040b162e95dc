/**
 * OAuth clients: registration and the secret check of client authentication. Metadata uses RFC 7591 names and
 * is validated twice: by our schema (clear messages, our policy) and by oidc-provider itself (protocol rules),
 * so a stored client always loads. Secrets are at least 32 characters; generated ones carry 256 bits. Only a
 * keyed digest is stored (a leaked table cannot be checked against guesses offline), and the one place a
 * presented secret is checked is `clientSecretAccepted`, which the provider's client authentication calls at
 * every endpoint (token, introspection and its /api/auth/introspect alias, revocation, device authorization).
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import type { DbOrTx } from '../db/client.js';
import { AppError } from '../errors/index.js';
import { constantTimeEqual, deriveKey, hmacDigest, randomToken } from '../lib/crypto.js';
import { isLoopbackHttp } from '../lib/network.js';
import { createClientQueries } from '../queries/clients.js';
import type { AuditService, AuditEvent } from './audit.js';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;

/** A client id: unreserved URI characters only (RFC 3986 §2.3), so it needs no encoding in a URL or a Basic header. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._~-]{1,100}$/;

const absoluteUrl = z.url({ message: 'must be an absolute URL' });

/**
 * A page or image of the client that the consent page shows to users (RFC 7591 §2 `logo_uri`, `policy_uri`,
 * `tos_uri`): https, or http to a loopback host only (the redirect URI rule, for an app run on the developer's
 * machine); no user name or password in it. Anything else (http across a network, `javascript:`, `data:`)
 * would put a script or an unauthenticated document on the consent page.
 */
const shownUrl = z
  .string()
  .max(2000)
  .refine((value) => {
    const url = URL.parse(value);
    return url !== null && (url.protocol === 'https:' || isLoopbackHttp(url)) && !url.username && !url.password;
  }, 'must be an https URL (http only on a loopback host)');

/**
 * A redirect URI (RFC 6749 §3.1.2, RFC 9700 §4.1.3: compared exactly, so no wildcard and no fragment): https,
 * http only to a loopback host (RFC 8252 §7.3, an app on the user's machine), or a native app's private-use
 * scheme in reverse domain notation (RFC 8252 §7.1, `com.example.app:/callback`). Never a user name or password.
 */
export const redirectUri = z
  .string()
  .max(2000)
  .superRefine((value, ctx) => {
    const url = URL.parse(value);
    const fail = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (value.includes('*')) return fail('must be an exact URI: no wildcard');
    if (url === null) return fail('must be an absolute URL');
    if (url.hash || value.includes('#')) return fail('must not have a fragment');
    if (url.username || url.password) return fail('must not carry a user name or password');
    if (url.protocol === 'https:' || isLoopbackHttp(url)) return;
    if (url.protocol === 'http:') return fail('must use https (http only on a loopback host: 127.0.0.1, [::1], localhost)');
    if (!/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol)) return fail('must use https, http on a loopback host, or a private-use scheme in reverse domain notation (com.example.app:/callback)');
  });

/** The client's fields as RFC 7591 §2 names them (plus keryu's own flags), before the rules between fields. */
export const clientFieldsSchema = z
  .object({
    client_id: z.string().regex(CLIENT_ID_PATTERN, 'must be 1-100 characters of A-Z a-z 0-9 . _ ~ -'),
    client_secret: z.string().min(32, 'must be at least 32 characters').max(512).optional(),
    client_name: z.string().min(1).max(200).optional(),
    logo_uri: shownUrl.optional(),
    policy_uri: shownUrl.optional(),
    tos_uri: shownUrl.optional(),
    token_endpoint_auth_method: z.enum(AUTH_METHODS).default('client_secret_basic'),
    redirect_uris: z.array(redirectUri).max(50).default([]),
    post_logout_redirect_uris: z.array(redirectUri).max(50).default([]),
    grant_types: z.array(z.enum(GRANT_TYPES)).min(1).default(['authorization_code']),
    response_types: z.array(z.literal('code')).optional(),
    scope: z.string().max(2000).optional(),
    application_type: z.enum(['web', 'native']).optional(),
    jwks_uri: absoluteUrl.optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    require_pkce: z.boolean().optional(),
    /** Access tokens issued to this client carry `roles` and `permissions` claims. */
    authorization_claims: z.boolean().optional(),
    /**
     * A first-party application of the operator's: it may obtain user tokens for keryu-auth's own API
     * (resource `<issuer origin>/api`, scopes named after the auth.* permissions). Any other client asking is
     * refused with invalid_target.
     */
    first_party: z.boolean().optional(),
    id_token_signed_response_alg: z.enum(['RS256', 'ES256']).optional(),
  })
  .strict();

/** The rules between fields: one place for the CLI, the bootstrap file and the management API. */
function checkClientRules(c: Omit<z.output<typeof clientFieldsSchema>, 'client_id' | 'client_secret'> & { client_secret?: string | undefined }, ctx: z.RefinementCtx): void {
  if (c.token_endpoint_auth_method === 'none' && c.client_secret !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'a public client (token_endpoint_auth_method: none) has no secret' });
  }
  if (c.token_endpoint_auth_method === 'none' && c.require_pkce === false) {
    ctx.addIssue({ code: 'custom', path: ['require_pkce'], message: 'public clients must use PKCE' });
  }
  if (c.token_endpoint_auth_method === 'none' && c.grant_types.includes('client_credentials')) {
    ctx.addIssue({ code: 'custom', path: ['grant_types'], message: 'client_credentials needs a confidential client' });
  }
  if (c.grant_types.includes('authorization_code') && c.redirect_uris.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'required for the authorization_code grant' });
  }
}

export const clientInputSchema = clientFieldsSchema.superRefine(checkClientRules);
export type ClientInput = z.input<typeof clientInputSchema>;

/**
 * What replacing a client (PUT) takes: every field but its id (in the path) and its secret (rotated with
 * POST .../secret/, so a secret never travels in an update and an update never shows one).
 */
export const clientUpdateSchema = clientFieldsSchema.omit({ client_id: true, client_secret: true }).superRefine(checkClientRules);
export type ClientUpdate = z.input<typeof clientUpdateSchema>;

/** The key client secrets are digested with, derived from the server secret every replica shares. */
export function clientSecretKey(config: { secret: string }): Buffer {
  return deriveKey(config.secret, 'client-secret-digest');
}

/** Whether a presented secret's digest is the stored one, compared in constant time; no stored digest never matches. */
function digestMatches(storedDigest: string | undefined, presentedDigest: string): boolean {
  return typeof storedDigest === 'string' && constantTimeEqual(storedDigest, presentedDigest);
}

/** The secrets a client may authenticate with: the current one and, for a grace period after a rotation, the one it replaced. */
export interface StoredClientSecrets {
  digest: string | undefined;
  previousDigest?: string | undefined;
  previousExpiresAt?: Date | undefined;
}

/**
 * Whether a presented client secret (RFC 6749 §2.3.1, already form-decoded) is the client's current secret, or
 * its previous one before the grace period after a rotation ended at `now`: its keyed digest against the stored ones. Both digests are always compared, so the time taken does not tell which matched.
 */
export function clientSecretAccepted(key: Buffer, stored: StoredClientSecrets, presented: string, now: Date): boolean {
  const presentedDigest = hmacDigest(key, presented);
  const current = digestMatches(stored.digest, presentedDigest);
  const inGrace = stored.previousExpiresAt !== undefined && stored.previousExpiresAt.getTime() > now.getTime();
  const previous = digestMatches(stored.previousDigest, presentedDigest);
  return current || (inGrace && previous);
}

/** What registering a client needs from the provider (built in src/oidc/client-registration.ts). */
export interface ClientRegistration {
  /** The key of the client-secret digest (the provider compares presented secrets with the same key). */
  secretKey: Buffer;
  /** oidc-provider's own metadata validation (throws with a message on invalid metadata). */
  validateMetadata: (metadata: Record<string, unknown>) => Promise<void>;
}

export interface ClientServiceDeps extends ClientRegistration {
  db: DbOrTx;
  audit: AuditService;
}

export type ClientActor = AuditEvent['actor'];

export interface ValidatedClient {
  clientId: string;
  metadata: Record<string, unknown>;
  secret: string | undefined;
}

/** Metadata as stored: the parsed fields without id and secret, `response_types` derived from the grants. */
export function toMetadata(input: Omit<z.output<typeof clientFieldsSchema>, 'client_id' | 'client_secret'> & { client_id?: string; client_secret?: string | undefined }): Record<string, unknown> {
  const { client_id: _id, client_secret: _secret, ...rest } = input;
  const metadata: Record<string, unknown> = {
    ...rest,
    response_types: input.response_types ?? (input.grant_types.includes('authorization_code') ? ['code'] : []),
  };
  return Object.fromEntries(Object.entries(metadata).filter(([, v]) => v !== undefined));
}

/** oidc-provider's own judgement of the metadata (so a stored client always loads), as a 400 naming what it refused. */
export async function assertProviderAccepts(registration: ClientRegistration, clientId: string, metadata: Record<string, unknown>, secret: string | undefined): Promise<void> {
  try {
    await registration.validateMetadata({ ...metadata, client_id: clientId, ...(secret ? { client_secret: secret } : {}) });
  } catch (err) {
    const e = err as { error_description?: string; message?: string };
    throw new AppError('invalid_request', `invalid client metadata: ${e.error_description ?? e.message ?? 'rejected'}`);
  }
}

export function createClientService(deps: ClientServiceDeps) {
  const queries = createClientQueries(deps.db);
  const needsSecret = (method: string) => method === 'client_secret_basic' || method === 'client_secret_post';

  /** Validation needs no database (and must not run inside a caller's transaction on PGlite's single connection). */
  async function validated(input: ClientInput, generateSecret: boolean): Promise<ValidatedClient> {
    const parsed = clientInputSchema.parse(input);
    let secret = parsed.client_secret;
    if (needsSecret(parsed.token_endpoint_auth_method) && secret === undefined) {
      if (!generateSecret) throw new AppError('invalid_request', `client_secret: required for ${parsed.token_endpoint_auth_method}`);
      secret = randomToken(32);
    }
    const metadata = toMetadata(parsed);
    await assertProviderAccepts(deps, parsed.client_id, metadata, secret);
    return { clientId: parsed.client_id, metadata, secret };
  }

  return {
    /** Creates a client; a confidential client without a declared secret gets a generated one, returned once. */
    async createClient(input: ClientInput, actor: ClientActor) {
      const { clientId, metadata, secret } = await validated(input, true);
      if (await queries.findClientById(clientId)) throw new AppError('conflict', `client ${clientId} already exists`);
      await queries.insertClient({ clientId, metadata, clientSecretDigest: secret ? hmacDigest(deps.secretKey, secret) : null });
      await deps.audit.record({ type: 'client.created', outcome: 'success', actor, subject: { type: 'client', id: clientId }, details: { metadata } });
      return { client_id: clientId, ...(secret ? { client_secret: secret } : {}), ...metadata };
    },

    /** Checks a declaration (secret required, not generated) without touching the database. */
    validateDeclaredClient: (input: ClientInput) => validated(input, false),

    /** Creates or updates a client to match a validated declaration; returns what changed (nothing on a re-apply). */
    async applyClient(declared: ValidatedClient, actor: ClientActor): Promise<'created' | 'updated' | 'unchanged'> {
      const { clientId, metadata, secret } = declared;
      const digest = secret ? hmacDigest(deps.secretKey, secret) : null;
      let existing = await queries.findClientById(clientId);
      if (!existing) {
        // Replicas starting together apply the same declaration: one inserts, the others compare with its row.
        if (await queries.insertClientIfAbsent({ clientId, metadata, clientSecretDigest: digest })) {
          await deps.audit.record({ type: 'client.created', outcome: 'success', actor, subject: { type: 'client', id: clientId }, details: { metadata } });
          return 'created';
        }
        existing = await queries.findClientById(clientId);
        if (!existing) throw new Error(`client ${clientId} was neither inserted nor found`);
      }
      if (isDeepStrictEqual(existing.metadata, metadata) && existing.clientSecretDigest === digest) return 'unchanged';
      await queries.updateClient(clientId, { metadata, clientSecretDigest: digest });
      await deps.audit.record({
        type: 'client.updated',
        outcome: 'success',
        actor,
        subject: { type: 'client', id: clientId },
        details: { before: existing.metadata, after: metadata, secret_changed: existing.clientSecretDigest !== digest },
      });
      return 'updated';
    },
  };
}
export type ClientService = ReturnType<typeof createClientService>;
