/**
 * The first factor of every sign-in (API and browser form), and which device the attempt comes from.
 *
 * Order of checks, each a guard: brute-force state (429 before any password work) → password (always
 * verified, against a dummy hash when there is no account, so unknown, wrong and disabled answer the same
 * in body and time) → an account reported compromised (403, only with the right password). A device is
 * known only by a secret this server issued (the browser's device cookie, an app's device token), never by
 * the app's `device_id` label.
 */
import { AppError } from '../../errors/index.js';
import { hmacDigest, sha256 } from '../../lib/crypto.js';
import { issueDeviceCookie, verifyDeviceCookie } from '../../lib/device-cookie.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { LoginChallengeRow } from '../../queries/one-time-secrets.js';
import type { UserRow } from '../../queries/users.js';
import type { AuditService } from '../audit.js';
import { identifierDigest, type BruteForceProtector } from '../brute-force.js';
import { normalizeEmail, type UserService } from '../users.js';
import { auditContext, userRef, type LoginChannel } from './origin.js';

export interface LoginInput {
  email: string;
  password: string;
  /** The app's label for its device: what a session and a challenge are bound to; never a reason to trust it. */
  deviceId?: string | undefined;
  deviceName?: string | undefined;
  /** The browser's device cookie, as sent (see lib/device-cookie.ts). */
  deviceCookie?: string | undefined;
  /** The app's device token, as sent: the same signed secret as the cookie, returned after a completed sign-in. */
  deviceToken?: string | undefined;
}

/** A right password, and what is known of the device it came from. */
export interface PasswordChecked {
  user: UserRow;
  /** The digest of a device that completed a sign-in to this account before (it keeps its own brute-force count). */
  knownDevice: string | undefined;
  /** Whether the attempt was counted against the brute-force limits (a completed login resets the count). */
  counted: boolean;
  /** A device cookie issued now, when the request proved none for this account. */
  deviceCookie: string | undefined;
  /** The device this login is bound to: the app's device token, else the browser's cookie; none for an app without a token. */
  deviceDigest: string | undefined;
  /** The digest of the browser's cookie (sent or issued now). */
  cookieDigest: string;
}

export const cookieDeviceDigest = (nonce: string) => sha256(`cookie:${nonce}`);

/**
 * The device token of an app login that proved none, fixed when its challenge opens (so the step's email,
 * its "This wasn't me" link and the trust it earns all name the same device) and answered only when the
 * sign-in completes. Its nonce is derived from the challenge row with a server key, so nothing secret is
 * stored and a database reader cannot compute it.
 */
const pendingDeviceNonce = (key: Buffer, challengeRowId: string) => hmacDigest(key, `pending-device-token:${challengeRowId}`);
export const pendingDeviceDigest = (key: Buffer, challengeRowId: string) => cookieDeviceDigest(pendingDeviceNonce(key, challengeRowId));

/** The pending device token of an app login's challenge (see pendingDeviceDigest), when the login has one. */
export function pendingDeviceToken(key: Buffer, user: UserRow, row: Pick<LoginChallengeRow, 'id' | 'channel' | 'deviceDigest'>): string | undefined {
  const nonce = pendingDeviceNonce(key, row.id);
  if (row.channel !== 'api' || row.deviceDigest !== cookieDeviceDigest(nonce)) return undefined;
  return issueDeviceCookie(key, identifierDigest(normalizeEmail(user.email)), nonce);
}

/** A placeholder user id for the known-device lookup when there is no account (same query, same time). */
const NO_USER = '00000000-0000-0000-0000-000000000000';

export function createFirstFactor(deps: { users: UserService; bruteForce: BruteForceProtector; audit: AuditService; deviceCookieKey: Buffer }) {
  const invalidCredentials = () => new AppError('invalid_credentials', 'the email or password is incorrect', 401);

  /**
   * Checks the first factor for any login (API or browser form). Returns the user when the password is
   * right; throws 429 `too_many_attempts`, 401 `invalid_credentials` or (right password, account reported
   * compromised) 403 `password_reset_required`.
   */
  async function checkPassword(input: LoginInput, context: RequestContext & { clientId?: string | undefined; channel: LoginChannel }): Promise<PasswordChecked> {
    const identifier = normalizeEmail(input.email);
    const idDigest = identifierDigest(identifier);
    const cookieNonce = verifyDeviceCookie(deps.deviceCookieKey, idDigest, input.deviceCookie);
    const tokenNonce = verifyDeviceCookie(deps.deviceCookieKey, idDigest, input.deviceToken);
    // The device this attempt is counted for: one that proves a secret this server issued for the account
    // (an app's device token, else a browser's device cookie), never the app's `device_id`, which is a
    // label anyone can read and send. It keeps its own count only once a sign-in from it completed
    // (after-login remembers it): a right password alone hands out cookies, which must not buy fresh counts.
    const proven = tokenNonce ?? cookieNonce;
    const candidate = proven ? cookieDeviceDigest(proven) : undefined;
    // The account is looked up before the password check only for the known-device test; the password
    // check below looks it up again with its hash (the same two queries whether or not it exists).
    const user = candidate ? await deps.users.findUserByEmail(identifier) : undefined;
    // The same query whether or not the account exists, so its cost reveals nothing.
    const knownDevice = candidate && (await deps.bruteForce.isKnownDevice(user?.id ?? NO_USER, candidate)) ? candidate : undefined;
    const attempt = { identifier, ip: context.ip, knownDevice };
    const audit = { clientId: context.clientId, context: auditContext(context) };

    let counted: boolean;
    try {
      counted = await deps.bruteForce.assertAllowed(attempt);
    } catch (err) {
      await deps.audit.record({
        type: 'login',
        outcome: 'failure',
        actor: { type: 'anonymous' },
        subject: user ? userRef(user) : undefined,
        ...audit,
        details: { method: 'pwd', channel: context.channel, reason: 'too_many_attempts', identifier_digest: idDigest },
      });
      throw err;
    }

    const { user: account, ok } = await deps.users.checkLogin(identifier, input.password);
    if (!account || !ok || account.disabled) {
      await deps.bruteForce.recordFailure(attempt, audit.context);
      await deps.audit.record({
        type: 'login',
        outcome: 'failure',
        actor: { type: 'anonymous' },
        subject: account ? userRef(account) : undefined,
        ...audit,
        details: { method: 'pwd', channel: context.channel, reason: !account ? 'unknown_account' : account.disabled ? 'disabled' : 'wrong_password', identifier_digest: idDigest },
      });
      throw invalidCredentials();
    }
    if (account.passwordResetRequired) {
      await deps.audit.record({ type: 'login', outcome: 'failure', actor: { type: 'anonymous' }, subject: userRef(account), ...audit, details: { method: 'pwd', channel: context.channel, reason: 'password_reset_required' } });
      throw new AppError('password_reset_required', 'this account was reported compromised: reset the password (POST /api/auth/password/reset/) before signing in', 403);
    }
    // A browser without a valid cookie for this account gets one now: a known device once a sign-in with it completes.
    const deviceCookie = cookieNonce ? undefined : issueDeviceCookie(deps.deviceCookieKey, idDigest);
    const cookieDigest = cookieDeviceDigest(cookieNonce ?? deviceCookie?.split('.')[0] ?? '');
    // An app is its device token (an app without one gets one when its sign-in completes); a browser is its device cookie.
    const deviceDigest = tokenNonce ? cookieDeviceDigest(tokenNonce) : input.deviceCookie !== undefined || context.channel === 'form' ? cookieDigest : undefined;
    return { user: account, knownDevice, counted, deviceCookie, deviceDigest, cookieDigest };
  }

  return { checkPassword };
}
export type FirstFactor = ReturnType<typeof createFirstFactor>;
