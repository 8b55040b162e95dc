import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import type { DeviceInfo } from './auth.js';
import { loginChallenges } from './auth.js';
import { users } from './users.js';

/** What a factor is. A new type (e.g. `webauthn`) is one more value: its key material goes in `secret`/`data`. */
export type FactorType = 'totp' | 'sms' | 'email' | 'recovery_code' | 'webauthn';

/**
 * A user's second factors, one row each. A factor counts only once `confirmed_at` is set (ownership of the
 * authenticator, phone or mailbox was proven). `secret` holds key material encrypted with AES-256-GCM
 * (AAD = factor id): the TOTP seed today, a WebAuthn credential later; `destination` is the phone number or
 * address codes are sent to; `last_used_step` is the last accepted TOTP time step (replay refused in SQL).
 */
export const mfaFactors = pgTable(
  'mfa_factors',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    type: text('type').$type<FactorType>().notNull(),
    /** What the user sees in lists: a masked phone or address, an authenticator name. */
    label: text('label').notNull(),
    destination: text('destination'),
    secret: text('secret'),
    /** Type-specific public data (e.g. a WebAuthn credential id and sign count). */
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
    lastUsedStep: bigint('last_used_step', { mode: 'number' }),
    preferred: boolean('preferred').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    confirmedAt: timestamp('confirmed_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  },
  (t) => [index('mfa_factors_user_idx').on(t.userId)],
);

/** Single-use recovery codes of a `recovery_code` factor; only keyed digests are stored. */
export const mfaRecoveryCodes = pgTable(
  'mfa_recovery_codes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    factorId: uuid('factor_id')
      .notNull()
      .references(() => mfaFactors.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('mfa_recovery_codes_user_hash_key').on(t.userId, t.codeHash)],
);

/**
 * One-time codes sent by SMS or email: for a login challenge (`challenge_id`), to confirm a factor
 * (`factor_id`), or to re-authenticate (neither). Six digits, stored as a keyed digest bound to the row id,
 * five minutes, single use. A challenge's wrong codes are counted on the challenge; the others here.
 */
export const otpCodes = pgTable(
  'otp_codes',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    challengeId: uuid('challenge_id').references(() => loginChallenges.id, { onDelete: 'cascade' }),
    factorId: uuid('factor_id').references(() => mfaFactors.id, { onDelete: 'cascade' }),
    channel: text('channel').$type<'sms' | 'email'>().notNull(),
    destination: text('destination').notNull(),
    codeHash: text('code_hash').notNull(),
    attempts: integer('attempts').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    consumedAt: timestamp('consumed_at', { withTimezone: true }),
  },
  (t) => [
    index('otp_codes_challenge_idx').on(t.challengeId),
    index('otp_codes_user_idx').on(t.userId, t.createdAt),
    index('otp_codes_expires_at_idx').on(t.expiresAt),
  ],
);

/**
 * Send counters for SMS and email codes, per user (`user:<id>`) and per destination (`dest:<digest>`),
 * shared by every replica and updated by one conditional upsert, so the senders cannot be used to flood a
 * phone or run up a bill.
 */
export const otpSendCounters = pgTable(
  'otp_send_counters',
  {
    key: text('key').primaryKey(),
    windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
    count: integer('count').notNull(),
    lastSentAt: timestamp('last_sent_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('otp_send_counters_window_start_idx').on(t.windowStart)],
);

/**
 * Devices that proved possession (a code or a factor) at a login: they skip the new-device check until
 * `trusted_until`. `device_digest` is the digest of the browser's device cookie nonce or the app's device id.
 */
export const trustedDevices = pgTable(
  'trusted_devices',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    deviceDigest: text('device_digest').notNull(),
    deviceInfo: jsonb('device_info').$type<DeviceInfo>().notNull().default({}),
    ipAddress: text('ip_address'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull(),
    trustedUntil: timestamp('trusted_until', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('trusted_devices_user_device_key').on(t.userId, t.deviceDigest), index('trusted_devices_trusted_until_idx').on(t.trustedUntil)],
);

/** Networks (IPv4 /24, IPv6 /64) a user signed in from, for the new-IP check. */
export const userNetworks = pgTable(
  'user_networks',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    network: text('network').notNull(),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('user_networks_user_network_key').on(t.userId, t.network), index('user_networks_last_seen_at_idx').on(t.lastSeenAt)],
);

/**
 * "This wasn't me" links in new-device, new-IP and factor-change emails: single use, no sign-in needed,
 * only the keyed digest (`TokenDigest`) of the link's token stored. `device_digest` names the device the email reports on.
 */
export const securityReports = pgTable(
  'security_reports',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    kind: text('kind').$type<'new_device' | 'new_ip' | 'factor_change' | 'sign_in'>().notNull(),
    deviceDigest: text('device_digest'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('security_reports_token_hash_key').on(t.tokenHash), index('security_reports_expires_at_idx').on(t.expiresAt)],
);
