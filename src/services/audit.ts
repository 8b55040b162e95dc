/**
 * The audit sink every capability writes to. Event types form a closed catalogue; details are stripped of
 * anything that looks like a secret before they are stored. Rows are batched per tick so that hot paths
 * (a token grant per request) cost one multi-row INSERT under load instead of one round trip each.
 */
import { isIP } from 'node:net';
import type { DbOrTx } from '../db/client.js';
import { createAuditLogQueries, type AuditEventInsert } from '../queries/audit-log.js';
import { isDatabaseUnavailable } from '../errors/unavailable.js';
import type { RequestContext } from '../lib/request-context.js';

export const auditEventTypes = [
  'user.created',
  'user.updated',
  'user.deleted',
  'permission.created',
  'permission.updated',
  'permission.deleted',
  'role.created',
  'role.updated',
  'role.deleted',
  'role.assigned',
  'role.unassigned',
  'grant.created',
  'grant.deleted',
  'access.denied',
  'client.created',
  'client.updated',
  'client.deleted',
  'client.secret_rotated',
  'resource_server.created',
  'resource_server.updated',
  'bootstrap.applied',
  'keys.generated',
  'keys.rotated',
  'login',
  'consent',
  'logout',
  'oidc.authorization',
  'oidc.grant',
  'oidc.grant_revoked',
  'oidc.interaction_started',
  'oidc.interaction_ended',
  'oidc.token_revoked',
  'token.reuse_detected',
  'login.challenge',
  'login.challenge_passed',
  'login.challenge_failed',
  'login.challenge_expired',
  'login.new_ip',
  'login.locked',
  'mfa.code_sent',
  'mfa.factor_enrolled',
  'mfa.factor_activated',
  'mfa.factor_updated',
  'mfa.factor_removed',
  'mfa.recovery_codes_generated',
  /** A passkey's signature counter went backwards: the assertion was refused (a cloned authenticator, WebAuthn §6.1.1). */
  'mfa.passkey_counter_regressed',
  'device.trusted',
  'device.distrusted',
  'account.compromise_reported',
  'user.unlocked',
  'session.created',
  'session.refreshed',
  'session.revoked',
  'session.device_mismatch',
  'session.ip_changed',
  'token.created',
  'token.updated',
  'token.revoked',
  'password.reset_requested',
  'password.reset',
  'password.changed',
  'audit.read',
  'audit.exported',
  'audit.verified',
  'audit.seal_broken',
  'login.ip_changed',
  'rate_limit.exceeded',
  'alert.delivered',
  'alert.delivery_failed',
] as const;
export type AuditEventType = (typeof auditEventTypes)[number];


export interface AuditEvent {
  type: AuditEventType;
  outcome: 'success' | 'failure';
  actor: { type: 'user' | 'client' | 'system' | 'cli' | 'anonymous'; id?: string | undefined };
  subject?: { type: string; id: string } | undefined;
  clientId?: string | undefined;
  context?: RequestContext | undefined;
  details?: Record<string, unknown> | undefined;
  /** When it happened, if not at recording (a job recording what expired earlier). */
  occurredAt?: Date | undefined;
}

const SECRET_KEY = /pass(word)?|secret|token|code|otp|private|cookie|authorization|assertion|verifier|^key$|_key$/i;

/** Removes values whose key names a secret, at any depth. Keys are kept so the event shows what was sent. */
export function stripSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[depth]';
  if (Array.isArray(value)) return value.map((v) => stripSecrets(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && k !== 'token_type' && k !== 'error_code' ? '[redacted]' : stripSecrets(v, depth + 1);
    }
    return out;
  }
  return value;
}

export interface AuditService {
  /** Records an event; resolves once it is stored. */
  record(event: AuditEvent): Promise<void>;
  /** Writes everything queued; called at shutdown. */
  flush(): Promise<void>;
}

/** The service's own sink, as the composition root sees it: what it holds and who watches it. */
export interface AuditSink extends AuditService {
  /** Events waiting to be written. */
  queueDepth(): number;
  /** Adds an observer (metrics count security events from here); returns its removal. */
  observe(observer: AuditObserver): () => void;
}

/**
 * Sees every event as it is recorded and every failed write. Called synchronously on the recording path,
 * so an observer only counts; it must not throw (a throwing observer is ignored).
 */
export interface AuditObserver {
  recorded?(event: AuditEvent): void;
  /** Events whose first write failed (they are held and retried). */
  writeFailed?(count: number): void;
  /** Events given up after the database refused them for too long. */
  dropped?(count: number): void;
}

export interface AuditLogger {
  error(obj: object, msg: string): void;
}

/**
 * The row an event becomes: the address kept only when it is one, the user agent bounded, secrets stripped from
 * the details. Every writer of audit rows goes through it (the service below, and jobs writing inside their own
 * transaction with `recordInTransaction`).
 */
export function auditRowOf(event: AuditEvent): AuditEventInsert {
  return {
    type: event.type,
    outcome: event.outcome,
    actorType: event.actor.type,
    actorId: event.actor.id ?? null,
    subjectType: event.subject?.type ?? null,
    subjectId: event.subject?.id ?? null,
    clientId: event.clientId ?? null,
    ip: event.context?.ip && isIP(event.context.ip) ? event.context.ip : null,
    userAgent: event.context?.userAgent?.slice(0, 512) ?? null,
    requestId: event.context?.requestId ?? null,
    details: (stripSecrets(event.details ?? {}) as Record<string, unknown>) ?? {},
    ...(event.occurredAt ? { occurredAt: event.occurredAt } : {}),
  };
}

/**
 * Writes events inside the caller's transaction, so they commit or roll back with the change they describe
 * (the cleanup job's "challenge expired" rows with the deletion). Same rows as the batched path.
 */
export async function recordInTransaction(tx: DbOrTx, events: readonly AuditEvent[]): Promise<void> {
  if (events.length) await createAuditLogQueries(tx).insertAuditEvents(events.map(auditRowOf));
}

/** Largest insert per flush: bounds one statement's parameter (a JSON array of events) and how long it holds a connection. */
const MAX_BATCH = 500;
/**
 * Events held while the database cannot take them: about a minute of a busy replica's events. Beyond it the
 * oldest are dropped (counted and logged), so an outage cannot exhaust the process's memory.
 */
const MAX_HELD = 100_000;
/** Back-off between attempts to write held events: quick for a blip, capped for an outage. */
const RETRY_MS = { first: 100, max: 2000 };

export function createAuditService(deps: { db: DbOrTx; log: AuditLogger; maxHeld?: number }): AuditSink {
  type Pending = { row: AuditEventInsert; resolve: () => void; reject: (err: unknown) => void; failed: boolean };
  const queries = createAuditLogQueries(deps.db);
  const maxHeld = deps.maxHeld ?? MAX_HELD;
  let queue: Pending[] = [];
  let scheduled: Promise<void> | undefined;
  let retryDelay = RETRY_MS.first;
  const observers = new Set<AuditObserver>();
  const notify = (call: (observer: AuditObserver) => void) => {
    for (const observer of observers) {
      try {
        call(observer);
      } catch {
        // Observers only count; a fault in one must never cost an audit event.
      }
    }
  };

  /**
   * Writes the queue in batches. A batch the database cannot take now (unavailable) stays at the head of the queue and is tried
   * again after a back-off: an action that happened keeps its event through an outage. Its recorders are
   * told at once (their promise rejects, so a request awaiting its event answers with an error instead of
   * waiting for the database), but the event itself is still written once the database is back.
   */
  async function drain(): Promise<void> {
    while (queue.length) {
      const batch = queue.slice(0, MAX_BATCH);
      try {
        await queries.insertAuditEvents(batch.map((p) => p.row));
        queue = queue.slice(batch.length);
        retryDelay = RETRY_MS.first;
        for (const p of batch) p.resolve();
      } catch (err) {
        if (!isDatabaseUnavailable(err)) {
          // The rows themselves are refused (a constraint): retrying cannot help.
          queue = queue.slice(batch.length);
          deps.log.error({ err, count: batch.length }, 'audit write failed');
          notify((o) => o.writeFailed?.(batch.filter((p) => !p.failed).length));
          for (const p of batch) if (!p.failed) p.reject(err);
          continue;
        }
        const fresh = batch.filter((p) => !p.failed);
        if (fresh.length) {
          deps.log.error({ err, count: fresh.length, held: queue.length }, 'audit write failed; holding the events to retry');
          notify((o) => o.writeFailed?.(fresh.length));
        }
        for (const p of fresh) {
          p.failed = true;
          p.reject(err);
        }
        dropOverflow();
        await new Promise((resolve) => setTimeout(resolve, retryDelay));
        retryDelay = Math.min(retryDelay * 2, RETRY_MS.max);
      }
    }
  }

  /** Drops the oldest held events beyond the bound: the only way an event is lost, always counted and logged. */
  function dropOverflow(): void {
    const excess = queue.length - maxHeld;
    if (excess <= 0) return;
    const dropped = queue.slice(0, excess);
    queue = queue.slice(excess);
    deps.log.error({ count: excess, held: queue.length }, 'audit events dropped: the database has refused them for too long');
    notify((o) => o.dropped?.(excess));
    for (const p of dropped) if (!p.failed) p.reject(new Error('audit event dropped'));
  }

  function schedule(): Promise<void> {
    scheduled ??= new Promise<void>((resolve) => setImmediate(resolve)).then(drain).finally(() => {
      scheduled = undefined;
      if (queue.length) void schedule();
    });
    return scheduled;
  }

  return {
    record(event) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ row: auditRowOf(event), resolve, reject, failed: false });
        dropOverflow();
        void schedule();
        notify((o) => o.recorded?.(event));
      });
    },
    queueDepth: () => queue.length,
    observe(observer) {
      observers.add(observer);
      return () => observers.delete(observer);
    },
    async flush() {
      while (scheduled || queue.length) await (scheduled ?? schedule());
    },
  };
}
