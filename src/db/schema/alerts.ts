import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/**
 * The alert outbox. An alert is written once (its `dedupe_key` is unique, so re-evaluating the same audit
 * events or re-running the same check inserts nothing) and keeps its `id` for ever: receivers deduplicate
 * on it (it is the Standard Webhooks `webhook-id`).
 */
export const alerts = pgTable(
  'alerts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    type: text('type').notNull(),
    severity: text('severity').$type<'low' | 'medium' | 'high' | 'critical'>().notNull(),
    /** What makes two alerts "the same" for aggregation windows (an IP network, a limit and key, a check id). */
    groupKey: text('group_key').notNull(),
    dedupeKey: text('dedupe_key').notNull(),
    summary: text('summary').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    eventIds: jsonb('event_ids').$type<string[]>().notNull().default([]),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('alerts_dedupe_key_idx').on(t.dedupeKey), index('alerts_type_group_idx').on(t.type, t.groupKey, t.createdAt), index('alerts_created_at_idx').on(t.createdAt)],
);

/** One row per alert and destination (a webhook URL, an email address), retried independently. */
export const alertDeliveries = pgTable(
  'alert_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    alertId: uuid('alert_id')
      .notNull()
      .references(() => alerts.id, { onDelete: 'cascade' }),
    channel: text('channel').$type<'webhook' | 'email'>().notNull(),
    target: text('target').notNull(),
    state: text('state').$type<'pending' | 'delivered' | 'failed'>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** When the next attempt is due; a claimed delivery's lease moves it forward so no other replica takes it. */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true }),
    lastError: text('last_error'),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('alert_deliveries_due_idx').on(t.state, t.nextAttemptAt), index('alert_deliveries_alert_idx').on(t.alertId)],
);

/** Last run (and cursor) of a background job, shared by every replica: the alert evaluator, the cleanup. */
export const jobRuns = pgTable('job_runs', {
  name: text('name').primaryKey(),
  lastRunAt: timestamp('last_run_at', { withTimezone: true }).notNull(),
  /** The evaluator's cursor: audit events up to this time (less a grace for late commits) are evaluated. */
  cursor: timestamp('cursor', { withTimezone: true }),
});

/**
 * Audit events the alert evaluator has judged, kept for a little longer than its late-commit grace: with
 * them each event is judged exactly once, even when it commits after later events were read.
 */
export const alertEvaluatedEvents = pgTable(
  'alert_evaluated_events',
  {
    eventId: uuid('event_id').primaryKey(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('alert_evaluated_events_occurred_at_idx').on(t.occurredAt)],
);
