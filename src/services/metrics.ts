/**
 * The Prometheus metrics of one app instance, in a registry of its own (never prom-client's global one:
 * tests run several apps in one process, and two replicas' numbers must never mix).
 *
 * Metric names and labels are a contract: dashboards and alerts are built on them. Security counters are
 * derived from audit events by one observer (`countAuditEvent`), so the code that signs users in knows
 * nothing about metrics. Label values come from closed lists only: never a user id, email, IP address,
 * token, client id or secret, so every label set stays bounded.
 *
 * Nothing on the scrape path touches the database: the session count and signing key ages are sampled on
 * a timer (`SAMPLE_INTERVAL_MS`) and the scrape reads the last sample.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/client.js';
import { createSessionStatsQueries } from '../queries/session-stats.js';
import type { AuditEvent, AuditSink } from './audit.js';

/** Grant types counted by `keryu_tokens_issued_total`; anything else is `other`. */
export const TOKEN_GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
  'first_party_login',
  'first_party_refresh',
  'personal_token',
] as const;

/** Login outcomes: a challenged attempt continues with MFA and is then counted again as success or failure. */
export const LOGIN_RESULTS = ['success', 'failure', 'challenged', 'locked', 'rate_limited'] as const;
export type LoginChannel = 'api' | 'browser';
/** The request rate limits (plugins/rate-limit.ts), by the name they give themselves. */
export const RATE_LIMIT_NAMES = ['auth-ip', 'oidc-ip', 'oidc-client'] as const;
export type JobName = 'cleanup' | 'key_refresh';

/**
 * The challenge method label uses the method's RFC 8176 `amr` value (`otp` for an authenticator app or a
 * recovery code, `sms`, `email`): the one vocabulary both the passed and the failed events carry.
 */
const MFA_METHODS: Record<string, string> = { totp: 'otp', recovery_code: 'otp', otp: 'otp', sms: 'sms', email: 'email' };
/** Longest any metric keeps the database out of the scrape: sessions and key ages are at most this old. */
export const SAMPLE_INTERVAL_MS = 30_000;

export interface PoolState {
  max: number;
}

export interface MetricsDeps {
  version: string;
  audit: AuditSink;
  db: Db;
  /** The signing keys and when each began to sign (for `keryu_signing_key_age_seconds`). */
  signingKeys: () => Promise<Array<{ alg: string; state: string; activates_at: string }>>;
  pool: () => PoolState;
  clock: () => Date;
  log: { warn(obj: object, msg: string): void };
}

export interface Metrics {
  readonly registry: Registry;
  /** One finished HTTP request; `route` is a route template, never a raw URL. */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void;
  /** A request refused by a request rate limit; `loginChannel` when it was a sign-in attempt. */
  rateLimited(limit: string, loginChannel?: LoginChannel): void;
  /** Rate limits count in this replica's memory (their Redis store is unavailable) or in Redis again. */
  rateLimitStoreFallback(active: boolean): void;
  jobSucceeded(job: JobName): void;
  /** Reads the database-backed gauges now (the timer calls it; tests may too). */
  sample(): Promise<void>;
  /** Starts the sampling timer and the audit observer; returns their stop. */
  start(): () => void;
}

/** Request duration buckets (seconds): token grants take milliseconds, password hashing a few hundred. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function createMetrics(deps: MetricsDeps): Metrics {
  const sessionStats = createSessionStatsQueries(deps.db);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({ name: 'keryu_build_info', help: 'Always 1; the labels name the running version', labelNames: ['version', 'node_version'], registers: [registry] }).set(
    { version: deps.version, node_version: process.versions.node },
    1,
  );
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route template',
    labelNames: ['method', 'route', 'status_code'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const loginAttempts = new Counter({ name: 'keryu_login_attempts_total', help: 'Sign-in attempts by channel and result', labelNames: ['channel', 'result'], registers: [registry] });
  const mfaChallenges = new Counter({ name: 'keryu_mfa_challenges_total', help: 'Sign-in challenge steps (second factor, new device or network) by method and result', labelNames: ['method', 'result'], registers: [registry] });
  const tokensIssued = new Counter({ name: 'keryu_tokens_issued_total', help: 'Tokens issued by grant type', labelNames: ['grant_type'], registers: [registry] });
  const refreshReuse = new Counter({ name: 'keryu_refresh_reuse_detected_total', help: 'Refresh tokens or codes presented again after use (a stolen token, or a client bug)', registers: [registry] });
  const rateLimitStoreFallback = new Gauge({ name: 'keryu_rate_limit_store_fallback', help: '1 while rate limits count in this replica\'s memory because Redis is unavailable (a limit then holds per replica)', registers: [registry] });
  const rateLimitedTotal = new Counter({ name: 'keryu_rate_limited_total', help: 'Requests refused by a request rate limit', labelNames: ['limit'], registers: [registry] });
  const lockouts = new Counter({ name: 'keryu_lockouts_total', help: 'Sign-in identifiers locked after repeated failures', registers: [registry] });
  new Gauge({ name: 'keryu_audit_queue_depth', help: 'Audit events waiting to be written', registers: [registry], collect() {
    this.set(deps.audit.queueDepth());
  } });
  const auditWriteFailures = new Counter({ name: 'keryu_audit_write_failures_total', help: 'Audit events whose write to the database failed (held and retried)', registers: [registry] });
  const auditDropped = new Counter({ name: 'keryu_audit_events_dropped_total', help: 'Audit events given up after the database refused them for too long (alert on any)', registers: [registry] });
  new Gauge({ name: 'keryu_db_pool_connections', help: 'Database connection pool of this replica by state', labelNames: ['state'], registers: [registry], collect() {
    this.set({ state: 'max' }, deps.pool().max);
  } });
  const activeSessions = new Gauge({ name: 'keryu_active_sessions', help: `Live first-party and browser sessions (sampled every ${SAMPLE_INTERVAL_MS / 1000} s)`, registers: [registry] });
  const jobLastSuccess = new Gauge({ name: 'keryu_job_last_success_timestamp_seconds', help: 'When a background job of this replica last succeeded (Unix seconds)', labelNames: ['job'], registers: [registry] });
  let signingSince = new Map<string, number>();
  new Gauge({ name: 'keryu_signing_key_age_seconds', help: 'Seconds since the current signing key of each algorithm began to sign', labelNames: ['alg'], registers: [registry], collect() {
    this.reset();
    const now = deps.clock().getTime();
    for (const [alg, since] of signingSince) this.set({ alg }, Math.max(0, (now - since) / 1000));
  } });

  const loginChannelOf = (channel: unknown): LoginChannel => (channel === 'api' ? 'api' : 'browser');
  const grantLabel = (grantType: string): string => ((TOKEN_GRANT_TYPES as readonly string[]).includes(grantType) ? grantType : 'other');
  function mfaMethodOf(details: Record<string, unknown> | undefined): string {
    if (typeof details?.method === 'string') return MFA_METHODS[details.method] ?? 'other';
    // A passed step names the factor only through the amr it added (the last one that is not pwd/mfa).
    const amr = Array.isArray(details?.amr) ? details.amr.filter((v): v is string => typeof v === 'string' && v !== 'pwd' && v !== 'mfa') : [];
    const last = amr.at(-1);
    return last ? (MFA_METHODS[last] ?? 'other') : 'unknown';
  }

  /** The one place where audit events become counters. */
  function countAuditEvent(event: AuditEvent): void {
    const details = event.details;
    switch (event.type) {
      case 'login':
        // A refusal by the brute-force protection (delay, lock or per-IP failure limit) is its own result.
        loginAttempts.inc({
          channel: loginChannelOf(details?.channel),
          result: event.outcome === 'success' ? 'success' : details?.reason === 'too_many_attempts' ? 'locked' : 'failure',
        });
        return;
      case 'login.challenge':
        loginAttempts.inc({ channel: loginChannelOf(details?.channel), result: 'challenged' });
        return;
      case 'login.challenge_passed':
        mfaChallenges.inc({ method: mfaMethodOf(details), result: 'passed' });
        return;
      case 'login.challenge_failed':
        mfaChallenges.inc({ method: mfaMethodOf(details), result: 'failed' });
        return;
      case 'login.challenge_expired':
        mfaChallenges.inc({ method: mfaMethodOf(details), result: 'expired' });
        return;
      case 'login.locked':
        lockouts.inc();
        return;
      case 'oidc.grant':
        if (event.outcome === 'success' && typeof details?.grant_type === 'string') tokensIssued.inc({ grant_type: grantLabel(details.grant_type) });
        return;
      case 'session.created':
        tokensIssued.inc({ grant_type: 'first_party_login' });
        return;
      case 'session.refreshed':
        if (event.outcome === 'success') tokensIssued.inc({ grant_type: 'first_party_refresh' });
        return;
      case 'token.created':
        tokensIssued.inc({ grant_type: 'personal_token' });
        return;
      case 'token.reuse_detected':
        refreshReuse.inc();
        return;
      default:
        return;
    }
  }

  async function sample(): Promise<void> {
    const now = deps.clock();
    const [sessions, keys] = await Promise.all([sessionStats.countActiveSessions(now), deps.signingKeys()]);
    activeSessions.set(sessions);
    const since = new Map<string, number>();
    for (const key of keys) if (key.state === 'signing') since.set(key.alg, Date.parse(key.activates_at));
    signingSince = since;
  }

  return {
    registry,
    observeRequest(method, route, statusCode, seconds) {
      httpDuration.observe({ method: HTTP_METHODS.has(method) ? method : 'other', route, status_code: String(statusCode) }, seconds);
    },
    rateLimited(limit, loginChannel) {
      rateLimitedTotal.inc({ limit: (RATE_LIMIT_NAMES as readonly string[]).includes(limit) ? limit : 'other' });
      if (loginChannel) loginAttempts.inc({ channel: loginChannel, result: 'rate_limited' });
    },
    rateLimitStoreFallback(active) {
      rateLimitStoreFallback.set(active ? 1 : 0);
    },
    jobSucceeded(job) {
      jobLastSuccess.set({ job }, deps.clock().getTime() / 1000);
    },
    sample,
    start() {
      const stopObserving = deps.audit.observe({
        recorded: countAuditEvent,
        writeFailed: (count) => auditWriteFailures.inc(count),
        dropped: (count) => auditDropped.inc(count),
      });
      const run = () => sample().catch((err: unknown) => deps.log.warn({ err }, 'metrics sample failed'));
      void run();
      const timer = setInterval(run, SAMPLE_INTERVAL_MS);
      timer.unref();
      return () => {
        clearInterval(timer);
        stopObserving();
      };
    },
  };
}
