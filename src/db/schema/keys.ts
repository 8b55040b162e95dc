import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Signing keys shared by every replica. The private JWK is encrypted with a key derived from KERYU_SECRET.
 * A key is published from `created_at`, signs from `activates_at`, and is kept for verification until
 * `retires_at` (set when a successor activates; null while current).
 */
export const signingKeys = pgTable('signing_keys', {
  kid: text('kid').primaryKey(),
  alg: text('alg').notNull(),
  publicJwk: jsonb('public_jwk').$type<Record<string, unknown>>().notNull(),
  privateJwkEncrypted: text('private_jwk_encrypted').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  activatesAt: timestamp('activates_at', { withTimezone: true }).notNull(),
  retiresAt: timestamp('retires_at', { withTimezone: true }),
});
