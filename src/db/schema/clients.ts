import { boolean, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * OAuth clients. `metadata` holds RFC 7591 client metadata (redirect_uris, grant_types, ...) without the
 * secret; the secret is kept only as an HMAC-SHA-256 digest keyed from KERYU_SECRET.
 */
export const clients = pgTable('clients', {
  clientId: text('client_id').primaryKey(),
  clientSecretDigest: text('client_secret_digest'),
  /**
   * After a rotation, the digest of the secret it replaced, accepted until `previous_secret_expires_at` (the
   * grace period that lets a client's deployments move to the new secret). At most one previous secret.
   */
  previousSecretDigest: text('previous_secret_digest'),
  previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true }),
  metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Resource servers (RFC 8707 resource indicators) that receive audience-restricted access tokens. */
export const resourceServers = pgTable('resource_servers', {
  identifier: text('identifier').primaryKey(),
  name: text('name'),
  scope: text('scope').notNull().default(''),
  accessTokenFormat: text('access_token_format').$type<'jwt' | 'opaque'>().notNull().default('jwt'),
  accessTokenTtl: integer('access_token_ttl'),
  /** Access tokens for this resource carry the subject's `roles` and `permissions` claims. */
  authorizationClaims: boolean('authorization_claims').notNull().default(false),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
