/**
 * One-time codes sent by SMS or email. Six digits from a CSPRNG, stored only as an HMAC bound to the row
 * (a database dump does not reveal them, and a digest from one row says nothing about another), valid five
 * minutes, compared in constant time, consumed once by a conditional UPDATE.
 *
 * Sending is limited per user and per destination (phone number or address) in PostgreSQL, so every
 * replica agrees: one send per OTP_RESEND_INTERVAL and OTP_SENDS_PER_HOUR per hour. The first code of a
 * login is not a resend: it skips the interval, never the hourly cap. Over the limit → 429 with Retry-After.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import { addSeconds, type Clock } from '../../lib/clock.js';
import { constantTimeEqual, hmacDigest, sha256 } from '../../lib/crypto.js';
import { createMfaQueries } from '../../queries/mfa.js';
import type { AuditService } from '../audit.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { Mailer } from '../notify/mailer.js';
import type { SmsSender } from '../notify/sms.js';

export const OTP_TTL_SECONDS = 300;
/** Wrong codes accepted for one enrolment or re-authentication code (a login challenge counts its own). */
export const OTP_MAX_ATTEMPTS = 5;
const SEND_WINDOW_SECONDS = 3600;

export type CodeChannel = 'sms' | 'email';

export interface CodeMessage {
  subject: string;
  /** The message text; `{code}` is replaced by the code. */
  text: string;
}

export interface CodeOwner {
  userId: string;
  challengeId?: string | undefined;
  factorId?: string | undefined;
  /** A re-authentication code (for changing factors): its own resend interval, the user's hourly cap. */
  reauthentication?: boolean | undefined;
}

/**
 * The result of checking a sent code: a right one was consumed; otherwise why not. `expired` also stands
 * for "none sent" and "already used" (the newest unused code of its owner is the only one that counts).
 */
export type CodeCheck = { ok: true } | { ok: false; reason: 'expired' | 'exhausted' | 'wrong'; attemptsLeft?: number | undefined };

export function maskDestination(channel: CodeChannel, destination: string): string {
  if (channel === 'sms') return `${destination.slice(0, 2)}•••${destination.slice(-2)}`;
  const [local = '', domain = ''] = destination.split('@');
  return `${local.slice(0, 1)}•••@${domain}`;
}

export function createOtpCodeService(deps: {
  db: Db;
  clock: Clock;
  key: Buffer;
  mailer: Mailer;
  sms: SmsSender;
  audit: AuditService;
  limits: { resendInterval: number; sendsPerHour: number };
}) {
  const queries = createMfaQueries(deps.db);
  const digestOf = (id: string, code: string) => hmacDigest(deps.key, `${id}:${code}`);

  /**
   * Counts the send against the user and the destination, both or neither; throws 429 when over a limit.
   * Sign-in codes have their own destination count: strangers enrolling someone's number on their own
   * accounts can flood it only up to the cap, and cannot use the cap up to block that person's sign-ins.
   */
  async function countSend(owner: CodeOwner, channel: CodeChannel, destination: string, resend: boolean): Promise<void> {
    const userId = owner.userId;
    const purpose = owner.challengeId ? 'sign-in:' : owner.reauthentication ? 'reauth:' : '';
    const destinationKey = `dest:${purpose}${sha256(`${channel}:${destination}`)}`;
    const now = deps.clock();
    const limits = { now, intervalSeconds: deps.limits.resendInterval, windowSeconds: SEND_WINDOW_SECONDS, perWindow: deps.limits.sendsPerHour, ignoreInterval: !resend };
    let wait = 0;
    await deps.db
      .transaction(async (tx) => {
        const q = createMfaQueries(tx);
        // A re-authentication is another purpose than the sign-in code sent a moment ago: the user's count
        // caps it per hour, its own count spaces it out.
        wait = await q.countSend(`user:${userId}`, owner.reauthentication ? { ...limits, ignoreInterval: true } : limits);
        if (!wait && owner.reauthentication) wait = await q.countSend(`user:reauth:${userId}`, limits);
        if (!wait) wait = await q.countSend(destinationKey, limits);
        // Roll back the user's count when the destination refused, so a refusal costs nothing.
        if (wait) throw new SendRefused();
      })
      .catch((err: unknown) => {
        if (!(err instanceof SendRefused)) throw err;
      });
    if (wait) throw new AppError('too_many_requests', 'too many codes sent; wait before asking for another', 429, { retry_after: wait });
  }

  return {
    maskDestination,

    /** Creates a code for `owner`, sends it, and returns when it expires. The newest code of an owner is the only one that counts. */
    async send(
      owner: CodeOwner,
      channel: CodeChannel,
      destination: string,
      message: CodeMessage,
      options: { resend: boolean; context?: RequestContext | undefined },
    ): Promise<{ expiresIn: number }> {
      await countSend(owner, channel, destination, options.resend);
      const now = deps.clock();
      const id = randomUUID();
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      await queries.insertOtpCode({
        id,
        userId: owner.userId,
        challengeId: owner.challengeId ?? null,
        factorId: owner.factorId ?? null,
        channel,
        destination,
        codeHash: digestOf(id, code),
        createdAt: now,
        expiresAt: addSeconds(now, OTP_TTL_SECONDS),
      });
      const text = message.text.replaceAll('{code}', code);
      try {
        if (channel === 'sms') await deps.sms.send({ to: destination, text });
        else await deps.mailer.send({ to: destination, subject: message.subject.replaceAll('{code}', code), text });
      } catch {
        // The provider (Twilio, the SMTP server) is down or refused the message: a plain 503, not a masked
        // 500; the code row stays unusable to anyone (nobody received it) and expires with the others.
        await deps.audit.record({
          type: 'mfa.code_sent',
          outcome: 'failure',
          actor: { type: 'system' },
          subject: { type: 'user', id: owner.userId },
          context: options.context,
          details: { channel, destination: maskDestination(channel, destination), resend: options.resend, challenge: Boolean(owner.challengeId), reason: 'delivery_unavailable' },
        });
        throw new AppError('delivery_unavailable', `the ${channel === 'sms' ? 'text message' : 'email'} could not be sent right now; try again in a few minutes or use another method`, 503);
      }
      await deps.audit.record({
        type: 'mfa.code_sent',
        outcome: 'success',
        actor: { type: 'system' },
        subject: { type: 'user', id: owner.userId },
        context: options.context,
        details: { channel, destination: maskDestination(channel, destination), resend: options.resend, challenge: Boolean(owner.challengeId) },
      });
      return { expiresIn: OTP_TTL_SECONDS };
    },

    /** Whether anything was sent to this owner on this channel yet (a later send is a resend). */
    async hasSent(challengeId: string, channel: CodeChannel): Promise<boolean> {
      return (await queries.countOtpCodes(challengeId, channel)) > 0;
    },

    /**
     * The one way a sent code is verified (a login step, a factor's confirmation, a re-authentication): the
     * owner's newest code for the channel, unexpired, compared in constant time, consumed once by a
     * conditional UPDATE (a second use fails). With `countAttempt`, the code carries its own limit of
     * OTP_MAX_ATTEMPTS wrong tries (a login challenge counts its attempts itself).
     */
    async verify(owner: CodeOwner, channel: CodeChannel, code: string, options: { countAttempt: boolean }): Promise<CodeCheck> {
      const sent = await queries.findLatestOtpCode({ userId: owner.userId, challengeId: owner.challengeId, factorId: owner.factorId, channel });
      if (!sent || sent.expiresAt <= deps.clock()) return { ok: false, reason: 'expired' };
      if (options.countAttempt && !(await queries.countOtpAttempt(sent.id, deps.clock(), OTP_MAX_ATTEMPTS))) return { ok: false, reason: 'exhausted' };
      const matches = /^\d{6}$/.test(code) && constantTimeEqual(digestOf(sent.id, code), sent.codeHash);
      if (!matches || !(await queries.consumeOtpCode(sent.id, deps.clock()))) {
        return { ok: false, reason: 'wrong', attemptsLeft: options.countAttempt ? Math.max(0, OTP_MAX_ATTEMPTS - sent.attempts - 1) : undefined };
      }
      return { ok: true };
    },
  };
}
export type OtpCodeService = ReturnType<typeof createOtpCodeService>;

class SendRefused extends Error {}
