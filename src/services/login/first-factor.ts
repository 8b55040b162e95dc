/**
 * The first factor of every sign-in (API and browser form), and which device the attempt comes from.
 *
 * Order of checks, each a guard: brute-force state (429 before any password work) → password (always
 * verified, against a dummy hash when there is no account, so unknown, wrong and disabled answer the same
 * in body and time) → an account reported compromised (403, only with the right password). A device is
 * known only by a secret this server issued (the browser's device cookie, an app's device token), never by
 * the app's `device_id` label.
 */
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { AppError } from '../../errors/index.js';
import { hmacDigest, sha256 } from '../../lib/crypto.js';
import { issueDeviceCookie, verifyDeviceCookie } from '../../lib/device-cookie.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { LoginChallengeRow } from '../../queries/one-time-secrets.js';
import type { UserRow } from '../../queries/users.js';
import type { AuditService } from '../audit.js';
import { identifierDigest, type BruteForceProtector } from '../brute-force.js';
import { normalizeEmail, type UserService } from '../users.js';
import type { PasskeyBinding, PasskeyService } from '../passkeys/service.js';
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

/** The brute-force identifier of a passkey nobody has (its failures still count against the IP). */
const UNKNOWN_PASSKEY_IDENTIFIER = 'passkey:unknown-credential';

/** A placeholder user id for the known-device lookup when there is no account (same query, same time). */
const NO_USER = '00000000-0000-0000-0000-000000000000';

/** The device secrets a sign-in presents: the browser's device cookie and the app's device token, as sent. */
export type DeviceSecrets = Pick<LoginInput, 'deviceCookie' | 'deviceToken'>;

export function createFirstFactor(deps: { users: UserService; bruteForce: BruteForceProtector; audit: AuditService; deviceCookieKey: Buffer; passkeys: PasskeyService }) {
  const invalidCredentials = () => new AppError('invalid_credentials', 'the email or password is incorrect', 401);

  /** The nonces of the device secrets that are valid for this identifier (see checkPassword on what they count for). */
  function deviceNonces(idDigest: string, input: DeviceSecrets) {
    const cookieNonce = verifyDeviceCookie(deps.deviceCookieKey, idDigest, input.deviceCookie);
    const tokenNonce = verifyDeviceCookie(deps.deviceCookieKey, idDigest, input.deviceToken);
    const proven = tokenNonce ?? cookieNonce;
    return { cookieNonce, tokenNonce, candidate: proven ? cookieDeviceDigest(proven) : undefined };
  }

  /** What a completed first factor knows of the device (shared by the password and the passkey). */
  function deviceOutcome(idDigest: string, input: DeviceSecrets, nonces: ReturnType<typeof deviceNonces>, channel: LoginChannel) {
    const { cookieNonce, tokenNonce } = nonces;
    // A browser without a valid cookie for this account gets one now: a known device once a sign-in with it completes.
    const deviceCookie = cookieNonce ? undefined : issueDeviceCookie(deps.deviceCookieKey, idDigest);
    const cookieDigest = cookieDeviceDigest(cookieNonce ?? deviceCookie?.split('.')[0] ?? '');
    // An app is its device token (an app without one gets one when its sign-in completes); a browser is its device cookie.
    const deviceDigest = tokenNonce ? cookieDeviceDigest(tokenNonce) : input.deviceCookie !== undefined || channel === 'form' ? cookieDigest : undefined;
    return { deviceCookie, deviceDigest, cookieDigest };
  }

  /**
   * Checks the first factor for any login (API or browser form). Returns the user when the password is
   * right; throws 429 `too_many_attempts`, 401 `invalid_credentials` or (right password, account reported
   * compromised) 403 `password_reset_required`.
   */
  async function checkPassword(input: LoginInput, context: RequestContext & { clientId?: string | undefined; channel: LoginChannel }): Promise<PasswordChecked> {
    const identifier = normalizeEmail(input.email);
    const idDigest = identifierDigest(identifier);
    // The device this attempt is counted for: one that proves a secret this server issued for the account
    // (an app's device token, else a browser's device cookie), never the app's `device_id`, which is a
    // label anyone can read and send. It keeps its own count only once a sign-in from it completed
    // (after-login remembers it): a right password alone hands out cookies, which must not buy fresh counts.
    const nonces = deviceNonces(idDigest, input);
    const { candidate } = nonces;
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
    return { user: account, knownDevice, counted, ...deviceOutcome(idDigest, input, nonces, context.channel) };
  }

  /**
   * The passwordless first factor: a passkey's assertion (discoverable, user verified) for a challenge bound to
   * this sign-in. The same guards as the password, in the same order: brute-force state of the passkey
   * owner's identifier (or, for a credential nobody has, a shared placeholder, so the IP count still grows),
   * then the check, a failure counted and audited; a disabled account answers as a failure, a compromised one
   * 403. Challenge problems keep their own codes (they say nothing about any account).
   */
  async function checkPasskey(response: AuthenticationResponseJSON, binding: PasskeyBinding, input: DeviceSecrets, context: RequestContext & { clientId?: string | undefined; channel: LoginChannel }): Promise<PasswordChecked & { amr: string[] }> {
    const owner = await deps.passkeys.ownerOf(response.id);
    const account = owner ? await deps.users.findUserById(owner) : undefined;
    const identifier = account ? normalizeEmail(account.email) : UNKNOWN_PASSKEY_IDENTIFIER;
    const idDigest = identifierDigest(identifier);
    const nonces = deviceNonces(idDigest, input);
    const knownDevice = account && nonces.candidate && (await deps.bruteForce.isKnownDevice(account.id, nonces.candidate)) ? nonces.candidate : undefined;
    const attempt = { identifier, ip: context.ip, knownDevice };
    const audit = { clientId: context.clientId, context: auditContext(context) };
    const subject = account ? userRef(account) : undefined;
    let counted: boolean;
    try {
      counted = await deps.bruteForce.assertAllowed(attempt);
    } catch (err) {
      await deps.audit.record({ type: 'login', outcome: 'failure', actor: { type: 'anonymous' }, subject, ...audit, details: { method: 'webauthn', channel: context.channel, reason: 'too_many_attempts' } });
      throw err;
    }
    const check = await deps.passkeys.verifyAuthentication({ response, binding }, audit.context);
    const refusal = !check.ok ? check.reason : account?.disabled ? 'disabled' : undefined;
    if (refusal || !check.ok || !account || check.userId !== account.id) {
      await deps.bruteForce.recordFailure(attempt, audit.context);
      await deps.audit.record({ type: 'login', outcome: 'failure', actor: { type: 'anonymous' }, subject, ...audit, details: { method: 'webauthn', channel: context.channel, reason: refusal ?? 'unknown_credential' } });
      if (refusal === 'challenge_expired') throw new AppError('challenge_expired', 'the passkey request has expired; ask for new options', 400);
      if (refusal === 'challenge_consumed') throw new AppError('challenge_consumed', 'this passkey request was already used; ask for new options', 400);
      if (refusal === 'unknown_challenge') throw new AppError('invalid_challenge', 'no such passkey request', 400);
      throw new AppError('invalid_credentials', 'the passkey could not be verified', 401);
    }
    if (account.passwordResetRequired) {
      await deps.audit.record({ type: 'login', outcome: 'failure', actor: { type: 'anonymous' }, subject, ...audit, details: { method: 'webauthn', channel: context.channel, reason: 'password_reset_required' } });
      throw new AppError('password_reset_required', 'this account was reported compromised: reset the password (POST /api/auth/password/reset/) before signing in', 403);
    }
    return { user: account, knownDevice, counted, amr: check.amr, ...deviceOutcome(idDigest, input, nonces, context.channel) };
  }

  return { checkPassword, checkPasskey };
}
export type FirstFactor = ReturnType<typeof createFirstFactor>;
