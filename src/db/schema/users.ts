import { sql } from 'drizzle-orm';
import { boolean, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/** People who sign in. `email` is stored normalized (trimmed, NFKC, lower-case); the unique index enforces it. */
export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    email: text('email').notNull(),
    emailVerified: boolean('email_verified').notNull().default(false),
    phone: text('phone'),
    phoneVerified: boolean('phone_verified').notNull().default(false),
    passwordHash: text('password_hash'),
    name: text('name'),
    disabled: boolean('disabled').notNull().default(false),
    /** Set by a "this wasn't me" report: the next sign-in needs a password reset first. */
    passwordResetRequired: boolean('password_reset_required').notNull().default(false),
    /**
     * Browser (provider) sessions signed in before this instant are dead, even if a request that loaded one before
     * its deletion writes it back afterwards. Set whenever every session of the user is ended.
     */
    sessionsValidAfter: timestamp('sessions_valid_after', { withTimezone: true }),
    /** The one browser session (its `oidc_payloads` id) `sessions_valid_after` spares: "sign out everywhere else" keeps the caller's own. */
    sessionsKeptId: text('sessions_kept_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('users_email_lower_key').on(sql`lower(${t.email})`)],
);
