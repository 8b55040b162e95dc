/**
 * Removes what has expired: provider artefacts, grant tombstones and retired signing keys. Bounded and
 * idempotent: deletes in batches, each batch in its own short transaction that first takes a
 * transaction-level advisory lock, so when several replicas run the job at once only one does the work.
 */
import { lt, sql } from 'drizzle-orm';
import { selectRows, type Db, type Tx } from '../db/client.js';
import { recordInTransaction, type AuditEvent } from '../services/audit.js';
import {
  authRefreshTokens,
  authTokens,
  jobRuns,
  loginChallenges,
  loginFailures,
  mfaFactors,
  oidcPayloads,
  oidcRevokedGrants,
  oidcRevokedTokens,
  otpCodes,
  otpSendCounters,
  passwordResetTokens,
  securityReports,
  signingKeys,
  trustedDevices,
  userNetworks,
  webauthnChallenges,
} from '../db/schema/index.js';

/** Small enough that one batch holds row locks for milliseconds, large enough to keep up with token churn. */
export const CLEANUP_BATCH_SIZE = 1000;
/** Upper bound on batches per run, so one run never monopolizes a connection; the next run continues. */
export const CLEANUP_MAX_BATCHES = 100;
/** Fixed advisory-lock key for the cleanup job ("clean" in ASCII). */
const CLEANUP_LOCK_KEY = 0x636c65616e;

export interface CleanupResult {
  ran: boolean;
  payloads: number;
  /** Tombstones of revoked grants, and records of revoked JWT access tokens, past their tokens' lifetime. */
  tombstones: number;
  keys: number;
  /** Sessions and tokens past their end (plus the grace below), with their refresh tokens. */
  sessions: number;
  /** Expired refresh tokens, login challenges and password reset links. */
  secrets: number;
  /** Retry answers of refresh tokens whose retry window has passed (kept encrypted only for the window). */
  retryAnswers: number;
  /** Failed-login counters no longer in effect. */
  loginFailures: number;
  /** Expired one-time codes and report links, send counters past their window, abandoned enrolments, devices no longer trusted. */
  mfa: number;
}

/** Expired sessions and tokens stay listed (as inactive) this long, so a user sees what just ended. */
const EXPIRED_TOKEN_GRACE = '7 days';
/** Failure counters idle this long are gone (longer than LOGIN_FAILURE_RESET and LOGIN_LOCK_MAX defaults). */
const LOGIN_FAILURE_RETENTION = '7 days';
/** Send counters older than this are past any window (the hourly cap). */
const SEND_COUNTER_RETENTION = '2 hours';
/** An enrolment not confirmed within a day was abandoned (a code lives 5 minutes; a TOTP page is filled in minutes). */
const PENDING_FACTOR_RETENTION = '1 day';
/** Networks unseen this long are forgotten (longer than any sensible IP_VERIFICATION_PERIOD; default 90 days). */
const NETWORK_RETENTION = '400 days';

export async function runCleanup(db: Db, now = new Date()): Promise<CleanupResult> {
  const result: CleanupResult = { ran: false, payloads: 0, tombstones: 0, keys: 0, sessions: 0, secrets: 0, retryAnswers: 0, loginFailures: 0, mfa: 0 };
  const at = sql`${now.toISOString()}::timestamptz`;
  const count = async (tx: Tx, query: ReturnType<typeof sql>) => (await selectRows<{ n: number }>(tx, sql`with done as (${query} returning 1) select count(*)::int as n from done`))[0]?.n ?? 0;
  const batchOf = (table: ReturnType<typeof sql>, condition: ReturnType<typeof sql>) =>
    sql`ctid = any(array(select ctid from ${table} where ${condition} limit ${CLEANUP_BATCH_SIZE}))`;
  const batch = async (work: (tx: Tx) => Promise<number>): Promise<number | undefined> =>
    db.transaction(async (tx) => {
      const [lock] = await selectRows<{ locked: boolean }>(tx, sql`select pg_try_advisory_xact_lock(${CLEANUP_LOCK_KEY}) as locked`);
      if (!lock?.locked) return undefined;
      return work(tx);
    });

  const steps: Array<[keyof Omit<CleanupResult, 'ran'>, (tx: Tx) => Promise<number>]> = [
    [
      'payloads',
      async (tx) =>
        (
          await tx
            .delete(oidcPayloads)
            .where(sql`ctid = any(array(select ctid from ${oidcPayloads} where ${oidcPayloads.expiresAt} < ${now.toISOString()}::timestamptz limit ${CLEANUP_BATCH_SIZE}))`)
            .returning({ id: oidcPayloads.id })
        ).length,
    ],
    [
      'tombstones',
      async (tx) =>
        (
          await tx
            .delete(oidcRevokedGrants)
            .where(sql`ctid = any(array(select ctid from ${oidcRevokedGrants} where ${oidcRevokedGrants.expiresAt} < ${now.toISOString()}::timestamptz limit ${CLEANUP_BATCH_SIZE}))`)
            .returning({ id: oidcRevokedGrants.grantId })
        ).length,
    ],
    [
      'tombstones',
      // A revoked JWT's record is needed only until the token would have expired anyway.
      (tx) => count(tx, sql`delete from ${oidcRevokedTokens} where ${batchOf(sql`${oidcRevokedTokens}`, sql`expires_at < ${at}`)}`),
    ],
    ['keys', async (tx) => (await tx.delete(signingKeys).where(lt(signingKeys.retiresAt, now)).returning({ kid: signingKeys.kid })).length],
    [
      'retryAnswers',
      (tx) =>
        count(
          tx,
          sql`update ${authRefreshTokens} set retry_response = null, retry_until = null where ${batchOf(sql`${authRefreshTokens}`, sql`retry_until < ${at}`)}`,
        ),
    ],
    [
      'sessions',
      (tx) => count(tx, sql`delete from ${authTokens} where ${batchOf(sql`${authTokens}`, sql`expires_at < ${at} - interval '${sql.raw(EXPIRED_TOKEN_GRACE)}'`)}`),
    ],
    ['secrets', (tx) => count(tx, sql`delete from ${authRefreshTokens} where ${batchOf(sql`${authRefreshTokens}`, sql`expires_at < ${at}`)}`)],
    [
      'secrets',
      // A sign-in left unfinished is an audit event too ("challenge expired"), written in the deletion's
      // transaction through the audit service's row builder (catalogue type, secrets stripped).
      async (tx) => {
        const gone = await selectRows<{ user_id: string; client_id: string | null; steps: string[] | null; consumed_at: string | Date | null; expires_at: string | Date }>(
          tx,
          sql`delete from ${loginChallenges} where ${batchOf(sql`${loginChallenges}`, sql`expires_at < ${at}`)} returning user_id::text, client_id, steps, consumed_at, expires_at`,
        );
        await recordInTransaction(
          tx,
          gone
            .filter((row) => row.consumed_at === null)
            .map((row): AuditEvent => ({
              type: 'login.challenge_expired',
              outcome: 'failure',
              actor: { type: 'system' },
              subject: { type: 'user', id: row.user_id },
              clientId: row.client_id ?? undefined,
              occurredAt: new Date(row.expires_at),
              details: { reason: row.steps?.[0] ?? null, unfinished: true },
            })),
        );
        return gone.length;
      },
    ],
    ['secrets', (tx) => count(tx, sql`delete from ${passwordResetTokens} where ${batchOf(sql`${passwordResetTokens}`, sql`expires_at < ${at}`)}`)],
    ['secrets', (tx) => count(tx, sql`delete from ${webauthnChallenges} where ${batchOf(sql`${webauthnChallenges}`, sql`expires_at < ${at}`)}`)],
    [
      'loginFailures',
      (tx) =>
        count(
          tx,
          sql`delete from ${loginFailures} where ${batchOf(
            sql`${loginFailures}`,
            sql`last_failure_at < ${at} - interval '${sql.raw(LOGIN_FAILURE_RETENTION)}' and (locked_until is null or locked_until < ${at})`,
          )}`,
        ),
    ],
    ['mfa', (tx) => count(tx, sql`delete from ${otpCodes} where ${batchOf(sql`${otpCodes}`, sql`expires_at < ${at}`)}`)],
    ['mfa', (tx) => count(tx, sql`delete from ${securityReports} where ${batchOf(sql`${securityReports}`, sql`expires_at < ${at}`)}`)],
    ['mfa', (tx) => count(tx, sql`delete from ${userNetworks} where ${batchOf(sql`${userNetworks}`, sql`last_seen_at < ${at} - interval '${sql.raw(NETWORK_RETENTION)}'`)}`)],
    ['mfa', (tx) => count(tx, sql`delete from ${trustedDevices} where ${batchOf(sql`${trustedDevices}`, sql`trusted_until < ${at}`)}`)],
    [
      'mfa',
      (tx) => count(tx, sql`delete from ${otpSendCounters} where ${batchOf(sql`${otpSendCounters}`, sql`last_sent_at < ${at} - interval '${sql.raw(SEND_COUNTER_RETENTION)}'`)}`),
    ],
    [
      'mfa',
      (tx) =>
        count(tx, sql`delete from ${mfaFactors} where ${batchOf(sql`${mfaFactors}`, sql`confirmed_at is null and created_at < ${at} - interval '${sql.raw(PENDING_FACTOR_RETENTION)}'`)}`),
    ],
  ];

  for (const [name, work] of steps) {
    for (let i = 0; i < CLEANUP_MAX_BATCHES; i++) {
      const deleted = await batch(work);
      if (deleted === undefined) return result; // another replica is cleaning (and records the run)
      result.ran = true;
      result[name] += deleted;
      if (deleted < CLEANUP_BATCH_SIZE) break;
    }
  }
  // When it ran, for the compliance report ("cleanup ran within two intervals").
  if (result.ran) await db.insert(jobRuns).values({ name: 'cleanup', lastRunAt: now }).onConflictDoUpdate({ target: jobRuns.name, set: { lastRunAt: now } });
  return result;
}

/** Runs the cleanup every `intervalSeconds` (with jitter so replicas do not all wake together). */
export function scheduleCleanup(db: Db, intervalSeconds: number, log: { info(o: object, m: string): void; error(o: object, m: string): void }, onDone?: (result: CleanupResult) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const next = () => {
    if (stopped) return;
    const delay = intervalSeconds * 1000 * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => {
      runCleanup(db)
        .then((r) => {
          onDone?.(r);
          if (r.payloads + r.tombstones + r.keys + r.sessions + r.secrets + r.retryAnswers + r.loginFailures + r.mfa > 0) log.info({ cleanup: r }, 'expired rows removed');
        })
        .catch((err: unknown) => log.error({ err }, 'cleanup failed'))
        .finally(next);
    }, delay);
    timer.unref();
  };
  next();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
