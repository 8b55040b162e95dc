import { bigint, boolean, index, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { mfaFactors } from './mfa.js';
import { users } from './users.js';

/**
 * Passkeys (WebAuthn credentials), one table for both uses: a second factor after the password, and a
 * passwordless sign-in (a discoverable credential asserted with user verification). Each credential is one
 * `mfa_factors` row of type `webauthn` (its user-chosen name is the factor's label, its created and last
 * used times the factor's), so the factor rules (has a factor, a role's mfa_required, removal with
 * re-authentication, an administrator's reset) count it without a branch; deleting the factor deletes the
 * credential. Nothing here is secret: the public key is public, so it is stored as it came (COSE, base64url).
 * @see https://www.w3.org/TR/webauthn-3/#sctn-credential-storage-modality
 */
export const webauthnCredentials = pgTable(
  'webauthn_credentials',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    factorId: uuid('factor_id')
      .notNull()
      .references(() => mfaFactors.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The credential id the authenticator chose, base64url (unique across users, WebAuthn §7.1 step 25). */
    credentialId: text('credential_id').notNull(),
    /** The COSE public key, base64url. */
    publicKey: text('public_key').notNull(),
    /** The authenticator's signature counter; 0 for authenticators that keep none. */
    signCount: bigint('sign_count', { mode: 'number' }).notNull().default(0),
    transports: text('transports').array().notNull().default([]),
    /** BE flag: the credential may be synced (a multi-device passkey). */
    backupEligible: boolean('backup_eligible').notNull(),
    /** BS flag, as last asserted: the credential is backed up (synced). */
    backedUp: boolean('backed_up').notNull(),
    aaguid: text('aaguid').notNull(),
    /** Whether the registration verified the user (PIN, biometrics). */
    userVerified: boolean('user_verified').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('webauthn_credentials_credential_id_key').on(t.credentialId), uniqueIndex('webauthn_credentials_factor_key').on(t.factorId), index('webauthn_credentials_user_idx').on(t.userId)],
);

/**
 * WebAuthn challenges, stored server-side: 256 random bits each, kept only as a keyed digest
 * (lib/crypto.ts createTokenDigest), five minutes, single use (one conditional UPDATE consumes one).
 * Bound to their purpose, to the user they were made for (none for a discoverable sign-in) and to what
 * asked for them (`binding`: a first-party session, a login challenge, a browser interaction, an app's
 * device), so an assertion made for one of them is refused by another.
 */
export const webauthnChallenges = pgTable(
  'webauthn_challenges',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    challengeHash: text('challenge_hash').notNull(),
    purpose: text('purpose').$type<'registration' | 'authentication'>().notNull(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    binding: text('binding').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    consumedAt: timestamp('consumed_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('webauthn_challenges_challenge_hash_key').on(t.challengeHash), index('webauthn_challenges_expires_at_idx').on(t.expiresAt)],
);
