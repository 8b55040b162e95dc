import { index, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/** Every artefact oidc-provider persists (sessions, codes, tokens, grants, interactions, ...), one row each. */
export const oidcPayloads = pgTable(
  'oidc_payloads',
  {
    model: text('model').notNull(),
    id: text('id').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    grantId: text('grant_id'),
    userCode: text('user_code'),
    uid: text('uid'),
    /** The account the artefact belongs to, so per-user listings and revocations need no JSON scan. */
    accountId: text('account_id'),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    consumedAt: timestamp('consumed_at', { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.model, t.id] }),
    index('oidc_payloads_grant_id_idx').on(t.grantId),
    index('oidc_payloads_user_code_idx').on(t.userCode),
    index('oidc_payloads_uid_idx').on(t.uid),
    index('oidc_payloads_account_id_idx').on(t.accountId),
    index('oidc_payloads_expires_at_idx').on(t.expiresAt),
  ],
);

/**
 * Tombstones of revoked grants. A token that names a revoked grant is never returned, even one written a
 * moment after the revocation by a request that was already in flight.
 */
export const oidcRevokedGrants = pgTable(
  'oidc_revoked_grants',
  {
    grantId: text('grant_id').primaryKey(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('oidc_revoked_grants_expires_at_idx').on(t.expiresAt)],
);

/**
 * Access tokens revoked one by one (RFC 7009) that cannot be deleted because nothing stores them: JWT access
 * tokens, identified by their `jti`. A row lives until the token would have expired anyway (`expires_at` is
 * the token's `exp`); the cleanup job removes it after that.
 */
export const oidcRevokedTokens = pgTable(
  'oidc_revoked_tokens',
  {
    jti: text('jti').primaryKey(),
    clientId: text('client_id').notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('oidc_revoked_tokens_expires_at_idx').on(t.expiresAt)],
);
