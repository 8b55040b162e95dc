import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import type { DeviceInfo } from '../../lib/device.js';
import { users } from './users.js';

export type TokenKind = 'session' | 'personal' | 'oidc_session' | 'oidc_grant';

/** What a session or token was created from (defined beside the code that builds it, src/lib/device.ts). */
export type { DeviceInfo };

/**
 * Every session and token a user holds, in one list: first-party sessions (`session`), personal API
 * tokens (`personal`), and mirrors of oidc-provider's browser sessions and grants (`oidc_session`,
 * `oidc_grant`, whose state lives in `oidc_payloads`; `reference` names the provider artefact).
 * `token_hash` is the keyed digest (`TokenDigest`) of the personal token's value (null for the other kinds: a session's
 * refresh tokens are in `auth_refresh_tokens`); the raw value is never stored.
 */
export const authTokens = pgTable(
  'auth_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind').$type<TokenKind>().notNull(),
    name: text('name'),
    tokenHash: text('token_hash'),
    deviceInfo: jsonb('device_info').$type<DeviceInfo>().notNull().default({}),
    /** The device id the session is bound to (refresh must present it); null = not bound. */
    deviceId: text('device_id'),
    ipAddress: text('ip_address'),
    scopes: text('scopes').array().notNull().default(sql`'{}'::text[]`),
    /**
     * How the user signed in (RFC 8176 `amr`): for a session, its sign-in's methods; for a personal token, those
     * of the session that created it. Null for rows from before this was recorded (no `mfa` assumed).
     */
    amr: text('amr').array(),
    /** oidc-provider's session uid or grant id, for the `oidc_*` kinds. */
    reference: text('reference'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /** Absolute end of the session or token. */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    /** Sessions only: end of the idle period, moved forward by every refresh. */
    idleExpiresAt: timestamp('idle_expires_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    isActive: boolean('is_active').notNull().default(true),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('auth_tokens_token_hash_key').on(t.tokenHash),
    uniqueIndex('auth_tokens_reference_key').on(t.kind, t.reference),
    index('auth_tokens_user_created_idx').on(t.userId, t.createdAt),
    index('auth_tokens_expires_at_idx').on(t.expiresAt),
  ],
);

/**
 * The refresh tokens of a first-party session, one row per generation (a rotation inserts the successor
 * and marks the parent used). A used token presented again is reuse, unless it is a retry: the same
 * device within the retry window while the successor is unused gets back the answer it was given, kept
 * here encrypted (`retry_response`) only until `retry_until`.
 */
export const authRefreshTokens = pgTable(
  'auth_refresh_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => authTokens.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    successorId: uuid('successor_id'),
    /** The device id presented with the rotation (a retry must present the same). */
    usedByDevice: text('used_by_device'),
    retryResponse: text('retry_response'),
    retryUntil: timestamp('retry_until', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('auth_refresh_tokens_token_hash_key').on(t.tokenHash),
    index('auth_refresh_tokens_session_idx').on(t.sessionId),
    index('auth_refresh_tokens_retry_until_idx').on(t.retryUntil),
    index('auth_refresh_tokens_expires_at_idx').on(t.expiresAt),
  ],
);

/**
 * A password login waiting for further steps (MFA, new-device or new-IP verification, enrolment). The
 * challenge id handed to the client is a 256-bit secret; only its hash is stored. Single use, bounded
 * attempts (over all its steps), short-lived, and bound to the login it belongs to: user, client, device
 * and IP address (and, in the browser, the provider interaction).
 */
export const loginChallenges = pgTable(
  'login_challenges',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    challengeHash: text('challenge_hash').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The methods the current step accepts. */
    methods: text('methods').array().notNull(),
    /** Steps still to do, the current one first: `mfa`, `new_device`, `new_ip`, `enroll`. */
    steps: text('steps').array().notNull().default(sql`'{}'::text[]`),
    /** What passing the steps so far proved (RFC 8176 values), `pwd` first. */
    amr: text('amr').array().notNull().default(sql`'{pwd}'::text[]`),
    channel: text('channel').$type<'api' | 'form'>().notNull().default('api'),
    clientId: text('client_id'),
    interactionUid: text('interaction_uid'),
    ipAddress: text('ip_address'),
    /** The device the login comes from (digest of the device cookie nonce or app device id), if it has one. */
    deviceDigest: text('device_digest'),
    /** Whether the device had signed in before (brute-force counts are then the device's own). */
    knownDevice: boolean('known_device').notNull().default(false),
    deviceId: text('device_id'),
    deviceName: text('device_name'),
    /**
     * Unused since 0004 (codes live in `otp_codes`): kept so replicas of the previous release, which still
     * select it, keep working during a rolling upgrade; to be dropped in a later release.
     */
    state: jsonb('state').$type<Record<string, unknown>>().notNull().default({}),
    attempts: integer('attempts').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    consumedAt: timestamp('consumed_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('login_challenges_challenge_hash_key').on(t.challengeHash),
    index('login_challenges_expires_at_idx').on(t.expiresAt),
    index('login_challenges_interaction_uid_idx').on(t.interactionUid),
  ],
);

/**
 * Failed-login counters shared by every replica, keyed by what is counted: `id:<identifier>` (every
 * unknown device shares it, whether or not the account exists), `dev:<identifier>:<device digest>` (a
 * device that signed in before keeps its own count) and `ip:<client address key>` (an IPv4 address, an IPv6 /64).
 */
export const loginFailures = pgTable(
  'login_failures',
  {
    key: text('key').primaryKey(),
    failures: integer('failures').notNull().default(0),
    lockCount: integer('lock_count').notNull().default(0),
    firstFailureAt: timestamp('first_failure_at', { withTimezone: true }).notNull(),
    lastFailureAt: timestamp('last_failure_at', { withTimezone: true }).notNull(),
    lockedUntil: timestamp('locked_until', { withTimezone: true }),
  },
  (t) => [index('login_failures_last_failure_at_idx').on(t.lastFailureAt)],
);

/** Devices that signed in to an account before (app device ids, by digest): they keep their own failure count. */
export const knownDevices = pgTable(
  'known_devices',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    deviceDigest: text('device_digest').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('known_devices_user_device_key').on(t.userId, t.deviceDigest)],
);

/** Single-use password reset links; only the keyed digest (`TokenDigest`) of the link's token is stored. */
export const passwordResetTokens = pgTable(
  'password_reset_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    consumedAt: timestamp('consumed_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('password_reset_tokens_token_hash_key').on(t.tokenHash), index('password_reset_tokens_expires_at_idx').on(t.expiresAt)],
);
