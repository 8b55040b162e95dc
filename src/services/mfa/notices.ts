/**
 * Security emails about sign-ins and factors, and what their "This wasn't me" link does.
 *
 * New-device codes, new-network notices and factor changes go to the account's address with a single-use
 * link that works without signing in. Following it (and confirming on the page, so a mail scanner's GET
 * changes nothing) ends every session and every sign-in in progress of the account, distrusts the device
 * the email reported, requires a password reset before the next sign-in, and records an audit event. A
 * link lives as long as the session it reports on, at most 7 days.
 */
import type { Db } from '../../db/client.js';
import type { DeviceInfo } from '../../lib/device.js';
import { addSeconds, type Clock } from '../../lib/clock.js';
import { randomToken, type TokenDigest } from '../../lib/crypto.js';
import { durationInWords } from '../../lib/duration.js';
import { createMfaQueries } from '../../queries/mfa.js';
import { createUserQueries, type UserRow } from '../../queries/users.js';
import type { AuditService } from '../audit.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { Mailer } from '../notify/mailer.js';
import type { SessionService } from '../sessions.js';
import { OTP_TTL_SECONDS, type CodeChannel, type CodeMessage } from './codes.js';
import { confirmationMessage, type FactorChangeNotifier } from './factors.js';

export const REPORT_MAX_TTL_SECONDS = 7 * 86400;

export interface SignInInfo {
  device: DeviceInfo;
  ip?: string | undefined;
  at: Date;
  deviceDigest?: string | undefined;
  /** Lifetime of the session the email reports on (the link's lifetime, capped at 7 days). */
  sessionTtl: number;
}

type ReportKind = 'new_device' | 'new_ip' | 'factor_change' | 'sign_in';

/** A report started from the account's activity list is followed at once: its link lives this long. */
export const PAGE_REPORT_TTL_SECONDS = 15 * 60;

export function describeDeviceInfo(device: DeviceInfo): string {
  const name = device.device_name ?? [device.browser, device.os && `on ${device.os}`].filter(Boolean).join(' ');
  return name || 'an unknown device';
}

export function createSecurityNotices(deps: {
  db: Db;
  clock: Clock;
  mailer: Mailer;
  sessions: SessionService;
  audit: AuditService;
  issuerName: string;
  reportLink: (token: string) => string;
  /** Lifetime of a session started by the API, for the factor-change link. */
  sessionTtl: number;
  log: { error(obj: object, msg: string): void };
  tokenDigest: TokenDigest;
}) {
  const queries = createMfaQueries(deps.db);
  const users = createUserQueries(deps.db);

  /** `since`: when the reported sign-in happened (the factors added from then on are removed); default now. */
  async function newReportLink(userId: string, kind: ReportKind, deviceDigest: string | undefined, ttl: number, details: Record<string, unknown>, since?: Date): Promise<string> {
    const token = randomToken();
    const now = deps.clock();
    await queries.insertSecurityReport({
      userId,
      tokenHash: deps.tokenDigest.stored(token),
      kind,
      deviceDigest: deviceDigest ?? null,
      details,
      createdAt: since ?? now,
      expiresAt: addSeconds(now, Math.min(ttl, REPORT_MAX_TTL_SECONDS)),
    });
    return deps.reportLink(token);
  }

  const describe = (info: SignInInfo) =>
    [`Device: ${describeDeviceInfo(info.device)}`, `IP address: ${info.ip ?? 'unknown'}`, `Time: ${timestamp(info.at)}`].join('\n');

  const wasntMe = (link: string) =>
    `If this wasn't you, secure your account now: ${link}\nThis signs you out everywhere, forgets this device and asks for a new password before the next sign-in.`;

  /** A mail that must not fail a sign-in: a delivery error is logged, never thrown. */
  async function sendNotice(to: string, subject: string, text: string) {
    try {
      await deps.mailer.send({ to, subject, text });
    } catch (err) {
      deps.log.error({ err }, 'security notice could not be sent');
    }
  }

  const notifier: FactorChangeNotifier = {
    async factorChanged(user, change, context) {
      const kind = label(change.type);
      const what = change.action === 'recovery_codes' ? 'New recovery codes were created' : `${/^[aeiou]/.test(kind) ? 'An' : 'A'} ${kind} was ${change.action === 'added' ? 'added to' : 'removed from'} your account`;
      const link = await newReportLink(user.id, 'factor_change', undefined, deps.sessionTtl, { change: change.action, type: change.type, ...(change.factorId && change.action !== 'removed' ? { factor_id: change.factorId } : {}) });
      const text = `${what}.\n\nIP address: ${context?.ip ?? 'unknown'}\nTime: ${timestamp(deps.clock())}\n\n${wasntMe(link)}`;
      await sendNotice(user.email, `${deps.issuerName}: your sign-in methods changed`, text);
    },
  };

  return {
    ...notifier,

    /** The code message for verifying a new device or network; the email carries a "This wasn't me" link. */
    async verificationMessage(user: UserRow, kind: 'new_device' | 'new_ip' | 'mfa' | 'enroll', info: SignInInfo): Promise<(channel: CodeChannel) => CodeMessage> {
      if (kind === 'mfa' || kind === 'enroll') return (channel) => confirmationMessage(deps.issuerName, channel);
      const link = await newReportLink(user.id, kind, info.deviceDigest, info.sessionTtl, { ip: info.ip });
      const intro = kind === 'new_device' ? 'Someone is signing in to your account from a device we have not seen before.' : 'Someone is signing in to your account from a new network.';
      return (channel) =>
        channel === 'sms'
          ? { subject: '', text: `{code} is your ${deps.issuerName} code to sign in on a new device. Never share it. Not you? Change your password.` }
          : { subject: `${deps.issuerName}: sign-in code for a new ${kind === 'new_device' ? 'device' : 'network'}`, text: `${intro}\n\nYour code is {code}\nIt expires in ${durationInWords(OTP_TTL_SECONDS)}. Never share it.\n\n${describe(info)}\n\n${wasntMe(link)}` };
    },

    /**
     * "New sign-in from ..." after a sign-in from a device never verified before (that got in with a second
     * factor) or from a network not seen recently (IP_VERIFICATION=notify); one email for both.
     */
    async newSignIn(user: UserRow, reasons: Array<'new_device' | 'new_ip'>, info: SignInInfo): Promise<void> {
      const kind = reasons.includes('new_device') ? 'new_device' : 'new_ip';
      const link = await newReportLink(user.id, kind, info.deviceDigest, info.sessionTtl, { ip: info.ip, reasons });
      const from = reasons.length > 1 ? 'a new device, on a new network' : kind === 'new_device' ? 'a new device' : 'a new network';
      await sendNotice(user.email, `${deps.issuerName}: new sign-in from ${describeDeviceInfo(info.device)}`, `Your account was just signed in to from ${from}.\n\n${describe(info)}\n\n${wasntMe(link)}`);
    },

    /**
     * "This wasn't me" next to a sign-in in the account's activity list: the same single-use report an email's
     * link opens, dated from that sign-in, for the signed-in user to confirm on the same page. Undefined when
     * the sign-in is older than an email's link would live (REPORT_MAX_TTL_SECONDS).
     */
    async signInReportLink(userId: string, signIn: { eventId: string; at: Date; ip?: string | null | undefined }): Promise<string | undefined> {
      if (deps.clock().getTime() - signIn.at.getTime() > REPORT_MAX_TTL_SECONDS * 1000) return undefined;
      return newReportLink(userId, 'sign_in', undefined, PAGE_REPORT_TTL_SECONDS, { event_id: signIn.eventId, ip: signIn.ip ?? undefined }, signIn.at);
    },

    async isReportUsable(token: string): Promise<boolean> {
      return Boolean(await queries.findUsableSecurityReport(deps.tokenDigest.candidates(token), deps.clock()));
    },

    /**
     * Follows a "This wasn't me" link; false when it is unknown, used or expired, else the kinds of factor it
     * removed: those added since the reported sign-in (the link's creation) and the one a factor-change email
     * reported, since a stolen session could have added them as a lasting second factor.
     */
    async report(token: string, context: RequestContext): Promise<false | { removedFactors: string[] }> {
      const now = deps.clock();
      const row = await queries.consumeSecurityReport(deps.tokenDigest.candidates(token), now);
      if (!row) {
        await deps.audit.record({ type: 'account.compromise_reported', outcome: 'failure', actor: { type: 'anonymous' }, context, details: { reason: 'invalid_link' } });
        return false;
      }
      await users.updateUser(row.userId, { passwordResetRequired: true });
      if (row.deviceDigest) await queries.deleteTrustedDeviceByDigest(row.userId, row.deviceDigest);
      const reportedFactor = typeof row.details.factor_id === 'string' ? row.details.factor_id : undefined;
      const removed = await queries.deleteFactorsAddedSince(row.userId, row.createdAt, reportedFactor);
      await deps.sessions.endAllSignIns(row.userId, { reason: 'compromise_reported' }, context);
      if (removed.length) {
        await deps.audit.record({ type: 'mfa.factor_removed', outcome: 'success', actor: { type: 'anonymous' }, subject: { type: 'user', id: row.userId }, context, details: { reason: 'compromise_reported', factors: removed } });
      }
      await deps.audit.record({
        type: 'account.compromise_reported',
        outcome: 'success',
        actor: { type: 'anonymous' },
        subject: { type: 'user', id: row.userId },
        context,
        details: { kind: row.kind, reported: row.details, device_distrusted: Boolean(row.deviceDigest), factors_removed: removed.length },
      });
      const removedFactors = removed.map((f) => (f.type === 'recovery_code' ? 'recovery codes' : label(f.type)));
      const user = await users.findUserById(row.userId);
      if (user) {
        const lines = [
          'You reported that a sign-in or change on your account was not you. Every session was signed out and the device was forgotten.',
          removedFactors.length ? `These sign-in methods, added since, were removed: ${removedFactors.join(', ')}.` : 'No sign-in method had been added since.',
          'Reset your password before you sign in again.',
        ];
        await sendNotice(user.email, `${deps.issuerName}: your account was secured`, lines.join('\n\n'));
      }
      return { removedFactors };
    },
  };
}
export type SecurityNotices = ReturnType<typeof createSecurityNotices>;

const timestamp = (at: Date) => at.toISOString().replace(/\.\d+Z$/, 'Z');

function label(type: string): string {
  return type === 'totp' ? 'authenticator app' : type === 'sms' ? 'phone number' : type === 'email' ? 'email address for codes' : type === 'webauthn' ? 'passkey' : 'sign-in method';
}
