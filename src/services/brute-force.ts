/**
 * Brute-force protection for password logins (API and browser form), counted in PostgreSQL so every
 * replica agrees (a per-process counter would turn a limit of L into N x L with N replicas).
 *  - Per identifier (the normalized email, whether or not an account has it, so the counter reveals
 *    nothing): from `delayAfter` consecutive failures each attempt must wait an increasing delay
 *    (2^(n-delayAfter) s, at most 60 s); from `lockAfter` the identifier is locked for `lockSeconds`,
 *    doubling with each further lock up to `maxLockSeconds`. A success resets the count. Never permanent.
 *  - A device that signed in to the account before (a valid device cookie, or an app device id bound at a
 *    past login) has its own count instead of the identifier's, so an attacker's failures from unknown
 *    devices lock only unknown devices out. Rotating IPs does not help an attacker: unknown devices share
 *    the identifier's count.
 *  - Per client IP: at most `ipMaxFailures` failures per `ipWindowSeconds`, across identifiers.
 * Refused attempts answer 429 `too_many_attempts` with Retry-After; they never reach the password check.
 * @see OWASP ASVS 5.0 6.3.1, NIST SP 800-63B §5.2.2
 */
import type { DbOrTx } from '../db/client.js';
import { AppError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { sha256 } from '../lib/crypto.js';
import { clientAddressKey } from '../lib/network.js';
import { createLoginFailureQueries, type LoginFailureRow } from '../queries/login-failures.js';
import type { AuditService } from './audit.js';
import type { RequestContext } from '../lib/request-context.js';

export interface BruteForceConfig {
  delayAfter: number;
  lockAfter: number;
  lockSeconds: number;
  maxLockSeconds: number;
  resetAfterSeconds: number;
  ipMaxFailures: number;
  ipWindowSeconds: number;
}

/** Longest progressive delay before the lock: long enough to slow guessing, short enough for a typo-prone user. */
const MAX_DELAY_SECONDS = 60;

export interface LoginAttempt {
  /** Normalized identifier (email). */
  identifier: string;
  ip?: string | undefined;
  /** Digest of a device that signed in to this account before, when the attempt comes from one. */
  knownDevice?: string | undefined;
}

export const identifierDigest = (identifier: string) => sha256(`login:${identifier}`);

function keysOf(attempt: LoginAttempt) {
  const id = identifierDigest(attempt.identifier);
  return {
    count: attempt.knownDevice ? `dev:${id}:${attempt.knownDevice}` : `id:${id}`,
    ip: attempt.ip ? `ip:${clientAddressKey(attempt.ip)}` : undefined,
    identifier: `id:${id}`,
    devicePrefix: `dev:${id}:`,
  };
}

export function createBruteForceProtector(deps: { db: DbOrTx; clock: Clock; config: BruteForceConfig; audit: AuditService }) {
  const queries = createLoginFailureQueries(deps.db);
  const { config } = deps;

  function waitFor(row: LoginFailureRow | undefined, now: Date): number {
    if (!row) return 0;
    if (row.lastFailureAt.getTime() < now.getTime() - config.resetAfterSeconds * 1000) return 0;
    let until = 0;
    if (row.lockedUntil && row.lockedUntil > now) until = row.lockedUntil.getTime();
    if (row.failures >= config.delayAfter) {
      const delay = Math.min(2 ** (row.failures - config.delayAfter), MAX_DELAY_SECONDS);
      until = Math.max(until, row.lastFailureAt.getTime() + delay * 1000);
    }
    return Math.max(0, Math.ceil((until - now.getTime()) / 1000));
  }

  function ipWaitFor(row: LoginFailureRow | undefined, now: Date): number {
    if (!row || row.failures < config.ipMaxFailures) return 0;
    const end = row.firstFailureAt.getTime() + config.ipWindowSeconds * 1000;
    return Math.max(0, Math.ceil((end - now.getTime()) / 1000));
  }

  return {
    /**
     * Throws 429 `too_many_attempts` (with `retry_after`) when this attempt must not be tried now. Returns
     * whether failures are counted against it (so a success knows whether there is a count to reset).
     */
    async assertAllowed(attempt: LoginAttempt): Promise<boolean> {
      const now = deps.clock();
      const keys = keysOf(attempt);
      const rows = await queries.findLoginFailures([keys.count, ...(keys.ip ? [keys.ip] : [])]);
      const wait = Math.max(
        waitFor(rows.find((r) => r.key === keys.count), now),
        ipWaitFor(rows.find((r) => r.key === keys.ip), now),
      );
      if (wait > 0) {
        throw new AppError('too_many_attempts', 'too many failed sign-in attempts; try again later', 429, { retry_after: wait });
      }
      return rows.some((r) => r.key === keys.count);
    },

    async recordFailure(attempt: LoginAttempt, context?: RequestContext): Promise<void> {
      const now = deps.clock();
      const keys = keysOf(attempt);
      const row = await queries.recordIdentifierFailure(keys.count, {
        now,
        resetBefore: new Date(now.getTime() - config.resetAfterSeconds * 1000),
        lockAfter: config.lockAfter,
        lockSeconds: config.lockSeconds,
        maxLockSeconds: config.maxLockSeconds,
      });
      if (keys.ip) await queries.recordIpFailure(keys.ip, { now, windowStart: new Date(now.getTime() - config.ipWindowSeconds * 1000) });
      if (row && row.failures >= config.lockAfter) {
        await deps.audit.record({
          type: 'login.locked',
          outcome: 'failure',
          actor: { type: 'anonymous' },
          subject: { type: 'identifier', id: keys.count.split(':')[1] ?? '' },
          context,
          details: { failures: row.failures, locked_until: row.lockedUntil?.toISOString(), known_device: Boolean(attempt.knownDevice) },
        });
      }
    },

    /** A success resets the count it was judged by (the device's or the identifier's), not the IP's. */
    async recordSuccess(attempt: LoginAttempt): Promise<void> {
      await queries.deleteLoginFailure(keysOf(attempt).count);
    },

    /**
     * What an administrator sees of an identifier's lockout: the failed sign-ins still counted (its shared
     * count and every device count; a count idle past the reset time no longer counts) and, while sign-in
     * must wait, until when.
     */
    async lockState(identifier: string): Promise<{ failures: number; lockedUntil: Date | undefined }> {
      const now = deps.clock();
      const keys = keysOf({ identifier });
      const rows = (await queries.findLoginFailuresByIdentifier(keys.identifier, keys.devicePrefix)).filter((row) => row.lastFailureAt.getTime() >= now.getTime() - config.resetAfterSeconds * 1000);
      const wait = Math.max(0, ...rows.map((row) => waitFor(row, now)));
      return { failures: rows.reduce((sum, row) => sum + row.failures, 0), lockedUntil: wait > 0 ? new Date(now.getTime() + wait * 1000) : undefined };
    },

    /** Removes every count for the identifier (its shared count and all device counts): `keryu user unlock`. */
    async unlock(identifier: string): Promise<number> {
      const keys = keysOf({ identifier });
      return queries.deleteLoginFailuresByIdentifier(keys.identifier, keys.devicePrefix);
    },

    isKnownDevice: queries.isKnownDevice,
    rememberDevice: queries.rememberDevice,
  };
}
export type BruteForceProtector = ReturnType<typeof createBruteForceProtector>;
