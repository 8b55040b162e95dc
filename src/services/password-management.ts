/**
 * Self-service password management: reset by emailed link and change while signed in.
 *  - Reset request: always 202, whether or not the account exists and whether or not anything is sent;
 *    the work runs in the background so the answer time does not tell either. The link carries a 256-bit
 *    token, stored as a keyed digest, single use (one conditional UPDATE), valid PASSWORD_RESET_TTL
 *    (30 minutes by default).
 *  - Mail bombing: emails to one account are limited like one-time codes (otp_send_counters, in
 *    PostgreSQL so replicas agree): one per PASSWORD_RESET_RESEND_INTERVAL and PASSWORD_RESET_SENDS_PER_HOUR
 *    per hour, whatever the requests' addresses. Within the limit a request sends a new link and the
 *    earlier ones stay valid until they expire: voiding them would let anyone who knows the address break
 *    the link the user is about to open, and the live links are few (the hourly cap), unguessable and
 *    short-lived. A completed reset voids every other link of the account.
 *  - Reset confirm: new password through the policy, then every session and token of the user is revoked
 *    (first-party sessions, personal tokens, browser sessions and app grants): a reset is what a user does
 *    when someone else may have the password.
 *  - Change: current password verified, new one through the policy, other sessions revoked (personal
 *    tokens are kept: they are automation the user set up deliberately and revokes from the list).
 */
import type { Db } from '../db/client.js';
import { AppError } from '../errors/index.js';
import { addSeconds, type Clock } from '../lib/clock.js';
import { randomToken, type TokenDigest } from '../lib/crypto.js';
import { durationInWords } from '../lib/duration.js';
import { createMfaQueries } from '../queries/mfa.js';
import { createOneTimeSecretQueries } from '../queries/one-time-secrets.js';
import type { AuditService } from './audit.js';
import type { RequestContext } from '../lib/request-context.js';
import type { Mailer } from './notify/mailer.js';
import type { SessionService } from './sessions.js';
import type { BruteForceProtector } from './brute-force.js';
import type { FactorService } from './mfa/factors.js';
import { normalizeEmail, type UserService } from './users.js';

/** The window of PASSWORD_RESET_SENDS_PER_HOUR. */
const RESET_SEND_WINDOW_SECONDS = 3600;

export function createPasswordManagementService(deps: {
  db: Db;
  clock: Clock;
  users: UserService;
  sessions: SessionService;
  audit: AuditService;
  mailer: Mailer;
  resetTtlSeconds: number;
  /** Per-account limits on reset emails. */
  resetSendLimits: { resendInterval: number; sendsPerHour: number };
  /** Builds the link a reset email carries, from the token. */
  resetLink: (token: string) => string;
  log: { error(obj: object, msg: string): void };
  bruteForce: Pick<BruteForceProtector, 'unlock'>;
  tokenDigest: TokenDigest;
  /** The one re-authentication check (services/mfa/factors.ts), for the current password. */
  reauthenticate: FactorService['reauthenticate'];
}) {
  const secrets = createOneTimeSecretQueries(deps.db);
  const sendCounters = createMfaQueries(deps.db);

  async function sendResetLink(email: string, context: RequestContext): Promise<void> {
    const user = await deps.users.findUserByEmail(email);
    if (!user || user.disabled) {
      await deps.audit.record({ type: 'password.reset_requested', outcome: 'failure', actor: { type: 'anonymous' }, context, details: { reason: user ? 'disabled' : 'unknown_account' } });
      return;
    }
    const now = deps.clock();
    const wait = await sendCounters.countSend(`password-reset:user:${user.id}`, {
      now,
      intervalSeconds: deps.resetSendLimits.resendInterval,
      windowSeconds: RESET_SEND_WINDOW_SECONDS,
      perWindow: deps.resetSendLimits.sendsPerHour,
      ignoreInterval: false,
    });
    if (wait) {
      await deps.audit.record({ type: 'password.reset_requested', outcome: 'failure', actor: { type: 'anonymous' }, subject: { type: 'user', id: user.id }, context, details: { reason: 'rate_limited', retry_after: wait } });
      return;
    }
    const token = randomToken();
    await secrets.insertPasswordResetToken({ userId: user.id, tokenHash: deps.tokenDigest.stored(token), createdAt: now, expiresAt: addSeconds(now, deps.resetTtlSeconds) });
    await deps.mailer.send({
      to: user.email,
      subject: 'Reset your password',
      text: [
        'Someone (hopefully you) asked to reset the password of your account.',
        `Open this link within ${durationInWords(deps.resetTtlSeconds)} to choose a new one:`,
        '',
        deps.resetLink(token),
        '',
        'If you did not ask for this, ignore this message: your password stays as it is.',
      ].join('\n'),
    });
    await deps.audit.record({ type: 'password.reset_requested', outcome: 'success', actor: { type: 'anonymous' }, subject: { type: 'user', id: user.id }, context });
  }

  return {
    /** Resolves at once; the work (lookup, token, email) continues in the background. Returns that work for tests. */
    requestReset(email: string, context: RequestContext): { done: Promise<void> } {
      const done = sendResetLink(email, context).catch((err: unknown) => deps.log.error({ err }, 'password reset email failed'));
      return { done };
    },

    isResetTokenUsable(token: string): Promise<boolean> {
      return secrets.isPasswordResetTokenUsable(deps.tokenDigest.candidates(token), deps.clock());
    },

    async confirmReset(token: string, newPassword: string, context: RequestContext): Promise<void> {
      const now = deps.clock();
      const digests = deps.tokenDigest.candidates(token);
      // Check the policy before consuming, so a refused password does not burn the link.
      if (!(await secrets.isPasswordResetTokenUsable(digests, now))) throw new AppError('invalid_reset_token', 'this reset link is invalid, used or expired; ask for a new one', 400);
      const candidateUserId = await secrets.findPasswordResetUserId(digests);
      const candidate = candidateUserId ? await deps.users.findUserById(candidateUserId) : undefined;
      if (!candidate) throw new AppError('invalid_reset_token', 'this reset link is invalid, used or expired; ask for a new one', 400);
      const normalized = await deps.users.checkPasswordPolicy(candidate, newPassword);
      const userId = await secrets.consumePasswordResetToken(digests, now);
      if (!userId) throw new AppError('invalid_reset_token', 'this reset link is invalid, used or expired; ask for a new one', 400);
      await deps.users.setPassword(candidate, normalized);
      // The other links of this account (still valid: see the header) have nothing left to reset.
      await secrets.consumePasswordResetTokensByUser(userId, now);
      // Sign-ins still waiting for a step passed the old password: they end with it.
      await deps.sessions.endAllSignIns(userId, { reason: 'password_reset' }, context);
      // Proving the mailbox ends the lock too: otherwise one wrong guess per lock period keeps the user out.
      await deps.bruteForce.unlock(normalizeEmail(candidate.email));
      await deps.audit.record({ type: 'password.reset', outcome: 'success', actor: { type: 'user', id: userId }, subject: { type: 'user', id: userId }, context });
    },

    async changePassword(principal: { userId: string; sessionId?: string | undefined }, currentPassword: string, newPassword: string, context: RequestContext): Promise<void> {
      const user = await deps.users.findUserById(principal.userId);
      // The current password is a re-authentication, under the same brute-force limits as a login (a stolen
      // session must not be a way to guess it at the request rate).
      if (!user || !(await deps.reauthenticate(user, { password: currentPassword }, context))) {
        await deps.audit.record({ type: 'password.changed', outcome: 'failure', actor: { type: 'user', id: principal.userId }, subject: { type: 'user', id: principal.userId }, context, details: { reason: 'wrong_password' } });
        throw new AppError('invalid_credentials', 'the current password is incorrect', 401);
      }
      await deps.users.setPassword(user, newPassword);
      await deps.sessions.endAllSignIns(user.id, { reason: 'password_change', exceptSessionId: principal.sessionId }, context);
      await deps.audit.record({ type: 'password.changed', outcome: 'success', actor: { type: 'user', id: user.id }, subject: { type: 'user', id: user.id }, context });
    },
  };
}
export type PasswordManagementService = ReturnType<typeof createPasswordManagementService>;
