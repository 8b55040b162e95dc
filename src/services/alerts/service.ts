/**
 * Alerts: evaluated from audit events, written to a PostgreSQL outbox, delivered to webhooks and by email.
 *
 * - Evaluation runs on one replica at a time (a transaction-level advisory lock) from a persisted cursor over
 *   `occurred_at`. Rows from concurrent transactions commit out of time order (`occurred_at` is the writing
 *   transaction's start), so each run also re-reads a grace period before the cursor and judges only the
 *   events it has not judged before (recorded in `alert_evaluated_events`): each event exactly once. Alerts
 *   also carry a dedupe key (unique in the outbox). Aggregating rules (credential stuffing, rate limits)
 *   raise at most one alert per group per window.
 * - Delivery is at least once: due deliveries are claimed with FOR UPDATE SKIP LOCKED and a lease (so two
 *   replicas never send the same one in a normal run, and a crashed sender's claim expires), retried with
 *   exponential backoff until ALERT_RETRY_MAX_AGE, then marked failed. All of it runs off the request path:
 *   a receiver that is down or slow never delays a login.
 * - Alert details are built from ids, addresses and counts only: never a secret, code or token.
 */
import { createRbacQueries } from '../../queries/rbac.js';
import { createAlertQueries, type AlertDeliveryRow, type AlertRow } from '../../queries/alerts.js';
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { decodeCursor, toPage } from '../../lib/pagination.js';
import { stripSecrets, type AuditService } from '../audit.js';
import type { Mailer } from '../notify/mailer.js';
import { alertCatalogue, type AlertCandidate } from './catalogue.js';
import { evaluateRules, ruleEventTypes, type StuffingThresholds } from './rules.js';
import { displayUrl, postWebhook } from './webhook.js';

export interface AlertConfig {
  webhookUrls: readonly string[];
  webhookSecret: string | undefined;
  emails: readonly string[];
  retryBaseSeconds: number;
  retryMaxAgeSeconds: number;
  stuffing: StuffingThresholds;
  signingKeyMaxAge: number;
}

/** Advisory-lock key of the evaluator ("alert" in ASCII). */
const EVALUATOR_LOCK_KEY = 0x616c657274;
const EVALUATOR_JOB = 'alerts.evaluate';
/** Re-read before the cursor each run: longer than any audit write stays uncommitted (single-statement inserts). */
export const LATE_COMMIT_GRACE_SECONDS = 120;
/** Events read per page; a run reads at most EVALUATOR_MAX_PAGES pages and continues next run. */
const EVALUATOR_PAGE = 1000;
const EVALUATOR_MAX_PAGES = 20;
/** Deliveries claimed per run: sent in parallel, each bounded by the 5 s webhook timeout. */
const DELIVERY_BATCH = 20;
/** A claim's lease: longer than a send can take (5 s timeout), so only a crashed sender's claim expires. */
const DELIVERY_LEASE_SECONDS = 60;
/** Retries are at most this far apart, so a receiver that comes back hears within the hour. */
const MAX_RETRY_DELAY_SECONDS = 3600;

export interface AlertLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export function alertView(alert: AlertRow, deliveries: AlertDeliveryRow[]) {
  return {
    id: alert.id,
    type: alert.type,
    severity: alert.severity,
    at: alert.createdAt.toISOString(),
    summary: alert.summary,
    details: alert.details,
    events: alert.eventIds,
    deliveries: deliveries.map((d) => ({
      channel: d.channel,
      target: d.channel === 'webhook' ? displayUrl(d.target) : d.target,
      state: d.state,
      attempts: d.attempts,
      last_attempt_at: d.lastAttemptAt?.toISOString() ?? null,
      next_attempt_at: d.state === 'pending' ? d.nextAttemptAt.toISOString() : null,
      delivered_at: d.deliveredAt?.toISOString() ?? null,
      last_error: d.lastError,
    })),
  };
}
export type AlertView = ReturnType<typeof alertView>;

/** The JSON body of a webhook: `{id, type, severity, at, summary, details, events}`. */
export function webhookBody(alert: AlertRow): string {
  return JSON.stringify({ id: alert.id, type: alert.type, severity: alert.severity, at: alert.createdAt.toISOString(), summary: alert.summary, details: alert.details, events: alert.eventIds });
}

function emailText(alert: AlertRow): string {
  const title = alertCatalogue[alert.type as keyof typeof alertCatalogue]?.title ?? alert.type;
  return [
    `${title}.`,
    '',
    alert.summary,
    '',
    `Severity: ${alert.severity}`,
    `When: ${alert.createdAt.toISOString()}`,
    `Alert: ${alert.type} (id ${alert.id})`,
    alert.eventIds.length ? `Audit events: ${alert.eventIds.slice(0, 10).join(', ')}${alert.eventIds.length > 10 ? ', ...' : ''}` : '',
    '',
    'Details:',
    JSON.stringify(alert.details, null, 2),
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n');
}

/** The newest audit seal (services/audit-seal), for the daily digest. */
export type LatestSeal = () => Promise<{ id: number; digest: string; sealedAt: Date; lastSeq: number } | undefined>;

/**
 * The daily digest: once a day (the first evaluation after midnight UTC) the newest seal's digest goes to every
 * alert channel, so a copy of the chain head lives outside the database; `keryu audit verify --expect-digest`
 * later proves that nothing up to it was truncated or rewritten.
 */
export function auditDigestCandidate(seal: Awaited<ReturnType<LatestSeal>>, now: Date): AlertCandidate | undefined {
  if (!seal) return undefined;
  const day = now.toISOString().slice(0, 10);
  return {
    type: 'audit_digest',
    groupKey: 'audit_digest',
    dedupeKey: `audit_digest:${day}`,
    summary: `Audit seal #${seal.id} of ${seal.sealedAt.toISOString()} has digest ${seal.digest}. Keep this message: "keryu audit verify --expect-digest ${seal.digest}" proves the log up to it is intact.`,
    details: { seal: seal.id, digest: seal.digest, sealed_at: seal.sealedAt.toISOString(), last_seq: seal.lastSeq, day },
    eventIds: [],
  };
}

export function createAlertService(deps: { db: Db; clock: Clock; audit: AuditService; mailer: Mailer; config: AlertConfig; log: AlertLogger; latestSeal?: LatestSeal | undefined }) {
  const { db, clock, config } = deps;

  function destinations() {
    return [
      ...(config.webhookSecret ? config.webhookUrls.map((target) => ({ channel: 'webhook' as const, target })) : []),
      ...config.emails.map((target) => ({ channel: 'email' as const, target })),
    ];
  }

  /** Writes candidates to the outbox (with `db` being the caller's transaction); returns those newly raised. */
  async function write(tx: Db | Parameters<Parameters<Db['transaction']>[0]>[0], candidates: AlertCandidate[], now: Date): Promise<AlertRow[]> {
    const q = createAlertQueries(tx);
    const raised: AlertRow[] = [];
    for (const c of candidates) {
      if (c.windowSeconds && (await q.existsAlertSince(c.type, c.groupKey, new Date(now.getTime() - c.windowSeconds * 1000)))) continue;
      const row = await q.insertAlert(
        {
          type: c.type,
          severity: alertCatalogue[c.type].severity,
          groupKey: c.groupKey,
          dedupeKey: c.dedupeKey,
          summary: c.summary,
          details: stripSecrets(c.details) as Record<string, unknown>,
          eventIds: c.eventIds,
          createdAt: now,
        },
        destinations(),
      );
      if (row) raised.push(row);
    }
    return raised;
  }

  async function send(d: AlertDeliveryRow & { alert: AlertRow }): Promise<void> {
    if (d.channel === 'webhook') {
      if (!config.webhookSecret) throw new Error('ALERT_WEBHOOK_SECRET is no longer configured');
      await postWebhook(d.target, { id: d.alert.id, body: webhookBody(d.alert), secret: config.webhookSecret });
      return;
    }
    await deps.mailer.send({ to: d.target, subject: `[${d.alert.severity}] ${alertCatalogue[d.alert.type as keyof typeof alertCatalogue]?.title ?? d.alert.type}`, text: emailText(d.alert) });
  }

  return {
    /** One evaluation pass (see the header); `ran` is false when another replica holds the evaluator. */
    async evaluate(): Promise<{ ran: boolean; raised: AlertRow[] }> {
      const now = clock();
      return db.transaction(async (tx) => {
        const q = createAlertQueries(tx);
        if (!(await q.tryLock(EVALUATOR_LOCK_KEY))) return { ran: false, raised: [] };
        const rbac = createRbacQueries(tx);
        const state = await q.findJobRun(EVALUATOR_JOB);
        // First run: start from now (less the grace), not from the whole history of the log.
        const cursor = state?.cursor ?? new Date(now.getTime() - LATE_COMMIT_GRACE_SECONDS * 1000);
        const since = new Date(cursor.getTime() - LATE_COMMIT_GRACE_SECONDS * 1000);
        let newest = cursor;
        let after: { at: Date; id: string } | undefined;
        const raised: AlertRow[] = [];
        const ruleContext = {
          rolePermissions: async (ids: string[]) => (ids.length ? (await rbac.findRoleClosure(ids)).permissions : new Set<string>()),
          roleIdsByNames: async (names: string[]) => (await rbac.findRolesByNames(names)).map((r) => r.id),
          loginFailuresBetween: (from: Date, to: Date) => q.findLoginFailuresBetween(from, to),
          stuffing: config.stuffing,
        };
        for (let page = 0; page < EVALUATOR_MAX_PAGES; page++) {
          const events = await q.findAuditEventsSince(since, ruleEventTypes, EVALUATOR_PAGE, after);
          const last = events[events.length - 1];
          if (!last) break;
          // Judged once each: events re-read within the grace were judged by an earlier run.
          const unjudged = await q.markEventsEvaluated(events);
          raised.push(...(await write(tx, await evaluateRules(events.filter((e) => unjudged.has(e.id)), ruleContext), now)));
          if (last.occurredAt > newest) newest = last.occurredAt;
          after = { at: last.occurredAt, id: last.id };
          if (events.length < EVALUATOR_PAGE) break;
        }
        await q.deleteEvaluatedEventsBefore(new Date(since.getTime() - LATE_COMMIT_GRACE_SECONDS * 1000));
        for (const key of await q.findCurrentSigningKeys(now)) {
          const age = (now.getTime() - key.createdAt.getTime()) / 1000;
          if (age <= config.signingKeyMaxAge) continue;
          raised.push(
            ...(await write(
              tx,
              [
                {
                  type: 'signing_key_overdue',
                  groupKey: key.kid,
                  dedupeKey: `signing_key_overdue:${key.kid}:${now.toISOString().slice(0, 10)}`,
                  summary: `Signing key ${key.kid} (${key.alg}) has signed for ${Math.floor(age / 86400)} days, past the rotation policy of ${Math.floor(config.signingKeyMaxAge / 86400)} days: run "keryu keys rotate".`,
                  details: { kid: key.kid, alg: key.alg, created_at: key.createdAt.toISOString(), max_age_seconds: config.signingKeyMaxAge },
                  eventIds: [],
                },
              ],
              now,
            )),
          );
        }
        const digest = deps.latestSeal ? auditDigestCandidate(await deps.latestSeal(), now) : undefined;
        if (digest) raised.push(...(await write(tx, [digest], now)));
        await q.upsertJobRun(EVALUATOR_JOB, now, newest);
        return { ran: true, raised };
      });
    },

    /** Raises alerts outside the evaluator (the compliance report); dedupe keys keep it idempotent. */
    async raise(candidates: AlertCandidate[]): Promise<AlertRow[]> {
      const now = clock();
      return db.transaction((tx) => write(tx, candidates, now));
    },

    /** Sends the deliveries that are due (see the header). */
    async deliver(): Promise<{ delivered: number; retrying: number; failed: number }> {
      const now = clock();
      const q = createAlertQueries(db);
      const claimed = await q.claimDueDeliveries(now, new Date(now.getTime() + DELIVERY_LEASE_SECONDS * 1000), DELIVERY_BATCH);
      const result = { delivered: 0, retrying: 0, failed: 0 };
      await Promise.all(
        claimed.map(async (d) => {
          const shown = d.channel === 'webhook' ? displayUrl(d.target) : d.target;
          const audited = { alert_id: d.alert.id, alert_type: d.alert.type, channel: d.channel, target: shown, attempts: d.attempts };
          try {
            await send(d);
            await q.markDelivered(d.id, clock());
            result.delivered++;
            await deps.audit.record({ type: 'alert.delivered', outcome: 'success', actor: { type: 'system' }, subject: { type: 'alert', id: d.alert.id }, details: audited });
          } catch (err) {
            const reason = err instanceof Error ? err.message.slice(0, 200) : 'failed';
            const deadline = d.createdAt.getTime() + config.retryMaxAgeSeconds * 1000;
            if (now.getTime() >= deadline) {
              await q.markFailed(d.id, reason);
              result.failed++;
              deps.log.error({ alert: audited, reason }, 'alert delivery given up');
              await deps.audit.record({ type: 'alert.delivery_failed', outcome: 'failure', actor: { type: 'system' }, subject: { type: 'alert', id: d.alert.id }, details: { ...audited, reason } });
              return;
            }
            const delay = Math.min(config.retryBaseSeconds * 2 ** Math.max(0, d.attempts - 1), MAX_RETRY_DELAY_SECONDS) * 1000;
            await q.markRetry(d.id, new Date(Math.min(now.getTime() + delay, deadline)), reason);
            result.retrying++;
          }
        }),
      );
      return result;
    },

    async list(args: { limit: number; cursor?: string | undefined; type?: string | undefined }) {
      const q = createAlertQueries(db);
      const rows = await q.listAlerts({ limit: args.limit, after: decodeCursor(args.cursor), type: args.type });
      const page = toPage(rows, args.limit, (r) => ({ key: r.createdAt.toISOString(), id: r.id }));
      const deliveries = await q.findDeliveriesByAlerts(page.items.map((a) => a.id));
      return { items: page.items.map((a) => alertView(a, deliveries.filter((d) => d.alertId === a.id))), next_cursor: page.next_cursor };
    },
  };
}
export type AlertService = ReturnType<typeof createAlertService>;
