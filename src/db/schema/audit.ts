import { sql } from 'drizzle-orm';
import { bigint, index, inet, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** Append-only record of security-relevant events; a trigger (see migrations) refuses UPDATE and DELETE. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
    type: text('type').notNull(),
    outcome: text('outcome').$type<'success' | 'failure'>().notNull(),
    actorType: text('actor_type').$type<'user' | 'client' | 'system' | 'cli' | 'anonymous'>().notNull(),
    actorId: text('actor_id'),
    subjectType: text('subject_type'),
    subjectId: text('subject_id'),
    clientId: text('client_id'),
    ip: inet('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    /** Insertion order (never reused): orders rows inside a seal. */
    seq: bigint('seq', { mode: 'number' }).generatedAlwaysAsIdentity(),
    /**
     * The writing transaction's id (64-bit, never wraps). Sealing only takes rows whose transaction is older
     * than every transaction still running, so a row that commits late is never skipped.
     */
    txId: bigint('tx_id', { mode: 'number' }).notNull().default(sql`(pg_current_xact_id()::text)::bigint`),
  },
  (t) => [
    index('audit_events_occurred_at_idx').on(t.occurredAt),
    index('audit_events_subject_idx').on(t.subjectId, t.occurredAt),
    index('audit_events_actor_idx').on(t.actorId, t.occurredAt),
    index('audit_events_type_idx').on(t.type, t.occurredAt),
    index('audit_events_seal_order_idx').on(t.txId, t.seq),
  ],
);

/**
 * Seals over audit_events, a signed hash chain (append-only, like the events). Seal n covers the rows whose
 * key (tx_id, seq) lies above seal n-1's upper key and at or below its own, every one of them
 * written by a transaction that had ended when the seal was made. `row_ids`/`row_digests` list the rows in
 * key order with the SHA-256 of each row's canonical encoding; `digest` is the SHA-256 over that list;
 * `signature` is an ES256 JWS over the seal's canonical body (digest and previous digest included).
 */
export const auditSeals = pgTable(
  'audit_seals',
  {
    id: integer('id').primaryKey(),
    sealedAt: timestamp('sealed_at', { withTimezone: true }).notNull().defaultNow(),
    lowerTx: bigint('lower_tx', { mode: 'number' }).notNull(),
    lowerSeq: bigint('lower_seq', { mode: 'number' }).notNull(),
    upperTx: bigint('upper_tx', { mode: 'number' }).notNull(),
    upperSeq: bigint('upper_seq', { mode: 'number' }).notNull(),
    firstSeq: bigint('first_seq', { mode: 'number' }).notNull(),
    lastSeq: bigint('last_seq', { mode: 'number' }).notNull(),
    rowCount: integer('row_count').notNull(),
    rowIds: uuid('row_ids').array().notNull(),
    rowDigests: text('row_digests').array().notNull(),
    digest: text('digest').notNull(),
    previousDigest: text('previous_digest'),
    kid: text('kid').notNull(),
    signature: text('signature').notNull(),
  },
  (t) => [index('audit_seals_upper_idx').on(t.upperTx, t.upperSeq)],
);

/** The dedicated ES256 key that signs seals; the private JWK is encrypted with a key derived from KERYU_SECRET. */
export const auditSigningKeys = pgTable('audit_signing_keys', {
  kid: text('kid').primaryKey(),
  publicJwk: jsonb('public_jwk').$type<Record<string, unknown>>().notNull(),
  privateJwkEncrypted: text('private_jwk_encrypted').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
