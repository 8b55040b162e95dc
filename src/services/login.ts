/**
 * Size: over 400 lines until the architecture issue splits it by concept (it is planned there, with the
 * split named); kept whole meanwhile so that security fixes landed in one place.
 *
 * Sign-in for first-party apps (POST /api/auth/login/ and /verify/) and for the browser (the OIDC login
 * interaction). One set of rules for both.
 *
 * Order of checks, each a guard: brute-force state (429 before any password work) → password (always
 * verified, against a dummy hash when there is no account, so unknown, wrong and disabled answer the same
 * in body and time) → the further steps the user's factors, roles and the attempt's risk call for → only
 * then a session (API) or the provider's login result (browser). Nothing that signs anyone in exists
 * before every step is done; a challenge is bound to its login (user, client, device id, interaction), not
 * to the address (see followAddress). A device is known or trusted only by a secret this server issued (the
 * browser's device cookie, an app's device token), never by the app's `device_id` label.
 *
 * Steps: `mfa` when the user has an active factor; otherwise `new_device` (device not verified, with
 * DEVICE_VERIFICATION=challenge) or `new_ip` (network not seen, with IP_VERIFICATION=challenge), by a code
 * to the account's address or verified phone; and `enroll` when MFA is required (MFA_REQUIRED or a role)
 * but the user has no factor, always preceded by a code to the account unless the device is trusted, so a
 * stolen password cannot enrol the thief's authenticator. Wrong codes count against the challenge (5, then
 * it dies) and feed the brute-force counters, which are reset only by a completed login.
 */
import { randomUUID } from 'node:crypto';
import type { DeviceInfo } from '../db/schema/index.js';
import { AppError } from '../errors/index.js';
import { addSeconds, type Clock } from '../lib/clock.js';
import { hmacDigest, randomToken, sha256 } from '../lib/crypto.js';
import { describeDevice } from '../lib/device.js';
import { issueDeviceCookie, verifyDeviceCookie } from '../lib/device-cookie.js';
import { networkOf } from '../lib/network.js';
import { createMfaQueries, type TrustedDeviceRow } from '../queries/mfa.js';
import { createOneTimeSecretQueries, type LoginChallengeRow } from '../queries/one-time-secrets.js';
import type { Db } from '../db/client.js';
import type { UserRow } from '../queries/users.js';
import type { AuditService } from './audit.js';
import type { RequestContext } from '../lib/request-context.js';
import type { AuthMethodRegistry, StepContext, StepReason } from './auth-methods.js';
import { identifierDigest, type BruteForceProtector, type LoginAttempt } from './brute-force.js';
import { maskDestination, type CodeChannel, type OtpCodeService } from './mfa/codes.js';
import type { FactorService } from './mfa/factors.js';
import type { SecurityNotices } from './mfa/notices.js';
import type { SessionService, TokenPair } from './sessions.js';
import { normalizeEmail, type UserService } from './users.js';

/** A pending login's challenge: short-lived and bounded (a sent code lives ≤ 10 minutes with ≤ 5 attempts, NIST SP 800-63B §5.1.3). */
export const CHALLENGE_TTL_SECONDS = 300;
export const CHALLENGE_MAX_ATTEMPTS = 5;
/**
 * Open sign-ins a user may have at once. With a stolen password, each challenge is 5 more guesses at the
 * second factor; the account lock (checked at every code) bounds guessing overall, and this bounds what a
 * burst of logins can open before the lock closes in. A new login replaces its device's unfinished one
 * and ends the oldest beyond this number.
 */
export const MAX_OPEN_CHALLENGES_PER_USER = 5;
/** What a user may enrol when MFA is required and they have no factor yet. */
export const ENROLLABLE_METHODS = ['totp', 'sms', 'email'] as const;
const CODE_METHODS = new Set(['sms', 'email']);

export interface ChallengeResponse {
  mfa_required: true;
  challenge_id: string;
  reason: StepReason;
  methods: string[];
  expires_in: number;
  /** Where the first code of this step went, when one was sent. */
  sent?: { method: string; destination: string } | undefined;
}

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

/** A completed API sign-in: the token pair, and the device token when this sign-in issued one. */
export type SignedIn = TokenPair & { device_token?: string | undefined };

export interface LoginPolicy {
  required: boolean;
  deviceVerification: 'off' | 'challenge';
  deviceTrustTtl: number;
  ipVerification: 'off' | 'notify' | 'challenge';
  ipVerificationPeriod: number;
}

type Channel = 'api' | 'form';

/** Where a login comes from, fixed at the password step and checked again at every later step. */
interface LoginOrigin {
  channel: Channel;
  clientId?: string | undefined;
  interactionUid?: string | undefined;
  deviceId?: string | undefined;
  deviceName?: string | undefined;
  deviceDigest?: string | undefined;
  /** The device cookie issued with this answer when the login has no other device (remembered if it completes at once). */
  cookieDigest?: string | undefined;
  knownDevice: boolean;
  /** The address the login started from, when it continues from another one. */
  startIp?: string | undefined;
}

interface LoginFacts {
  trusted: TrustedDeviceRow | undefined;
  /** The login's network (IPv4 /24, IPv6 /64), when the new-IP check is on. */
  network: string | undefined;
  newNetwork: boolean;
}

/** A browser login that passed every step: what the interaction writes as its `login` result. */
export interface CompletedLogin {
  user: UserRow;
  amr: string[];
}

export const cookieDeviceDigest = (nonce: string) => sha256(`cookie:${nonce}`);

/** A placeholder user id for the known-device lookup when there is no account (same query, same time). */
const NO_USER = '00000000-0000-0000-0000-000000000000';

const challengeError = {
  invalid: () => new AppError('invalid_challenge', 'no such pending login', 400),
  deviceMismatch: () => new AppError('device_mismatch', 'device_id must be the one the login was started with', 400),
  consumed: () => new AppError('challenge_consumed', 'this login was already completed or replaced by a newer one; sign in again', 400),
  expired: () => new AppError('challenge_expired', 'this login has expired; sign in again', 400),
  exhausted: () => new AppError('too_many_attempts', 'too many wrong codes; sign in again', 429, { retry_after: 0 }),
};

export function createLoginService(deps: {
  db: Db;
  clock: Clock;
  users: UserService;
  bruteForce: BruteForceProtector;
  sessions: SessionService;
  methods: AuthMethodRegistry;
  factors: FactorService;
  codes: OtpCodeService;
  notices: SecurityNotices;
  audit: AuditService;
  deviceCookieKey: Buffer;
  policy: LoginPolicy;
  /** SESSION_IP_BINDING: with `strict`, a sign-in is finished only from the address it started from. */
  ipBinding: 'off' | 'strict';
  /** Whether one of the user's roles requires MFA. */
  roleRequiresMfa(userId: string): Promise<boolean>;
  /** Lifetimes of what a login starts (API session, browser SSO session), for the report links. */
  sessionTtl: Record<Channel, number>;
}) {
  const secrets = createOneTimeSecretQueries(deps.db);
  const mfa = createMfaQueries(deps.db);
  const { policy } = deps;

  const invalidCredentials = () => new AppError('invalid_credentials', 'the email or password is incorrect', 401);
  const auditContext = (context: RequestContext) => ({ ip: context.ip, userAgent: context.userAgent, requestId: context.requestId });
  const userRef = (user: UserRow) => ({ type: 'user', id: user.id });

  function attemptOf(user: UserRow, origin: Pick<LoginOrigin, 'knownDevice' | 'deviceDigest'>, ip: string | undefined): LoginAttempt {
    return { identifier: normalizeEmail(user.email), ip, knownDevice: origin.knownDevice ? origin.deviceDigest : undefined };
  }

  /**
   * Checks the first factor for any login (API or browser form). Returns the user when the password is
   * right; throws 429 `too_many_attempts`, 401 `invalid_credentials` or (right password, account reported
   * compromised) 403 `password_reset_required`.
   */
  async function checkPassword(input: LoginInput, context: RequestContext & { clientId?: string | undefined; channel: Channel }) {
    const identifier = normalizeEmail(input.email);
    const idDigest = identifierDigest(identifier);
    const cookieNonce = verifyDeviceCookie(deps.deviceCookieKey, idDigest, input.deviceCookie);
    const tokenNonce = verifyDeviceCookie(deps.deviceCookieKey, idDigest, input.deviceToken);
    // The device this attempt is counted for: one that proves a secret this server issued for the account
    // (an app's device token, else a browser's device cookie), never the app's `device_id`, which is a
    // label anyone can read and send. It keeps its own count only once a sign-in from it completed
    // (afterLogin remembers it): a right password alone hands out cookies, which must not buy fresh counts.
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

  /** What is known of where a login comes from: whether its device is trusted, whether its network is new. */
  async function whereFrom(user: UserRow, deviceDigest: string | undefined, ip: string | undefined): Promise<LoginFacts> {
    const now = deps.clock();
    const trusted = deviceDigest ? await mfa.findTrustedDevice(user.id, deviceDigest, now) : undefined;
    const network = policy.ipVerification === 'off' ? undefined : networkOf(ip);
    const newNetwork = network !== undefined && !(await mfa.isKnownNetwork(user.id, network, addSeconds(now, -policy.ipVerificationPeriod)));
    return { trusted, network, newNetwork };
  }

  async function plan(user: UserRow, origin: LoginOrigin, ip: string | undefined) {
    const factors = (await deps.factors.listActive(user.id)).filter((f) => f.type !== 'recovery_code');
    const facts = await whereFrom(user, origin.deviceDigest, ip);
    const { trusted, newNetwork } = facts;
    const steps: StepReason[] = [];
    if (factors.length) steps.push('mfa');
    else {
      const mustEnroll = policy.required || (await deps.roleRequiresMfa(user.id));
      if (!trusted && (policy.deviceVerification === 'challenge' || mustEnroll)) steps.push('new_device');
      else if (newNetwork && policy.ipVerification === 'challenge') steps.push('new_ip');
      if (mustEnroll) steps.push('enroll');
    }
    return { steps, facts };
  }

  async function stepOf(user: UserRow, challengeId: string, reason: Exclude<StepReason, 'enroll'>): Promise<StepContext> {
    return { user, factors: await deps.factors.listActive(user.id), reason, challengeId };
  }

  async function methodsFor(user: UserRow, challengeId: string, reason: StepReason): Promise<string[]> {
    if (reason === 'enroll') return [...ENROLLABLE_METHODS];
    return (await deps.methods.configuredFor(await stepOf(user, challengeId, reason))).map((m) => m.id);
  }

  function signInInfo(row: Pick<LoginChallengeRow, 'deviceDigest' | 'channel' | 'deviceId' | 'deviceName'>, context: RequestContext) {
    return {
      device: describeDevice(context.userAgent, row.deviceId ?? undefined, row.deviceName ?? undefined),
      ip: context.ip,
      at: deps.clock(),
      deviceDigest: row.deviceDigest ?? undefined,
      sessionTtl: deps.sessionTtl[row.channel],
    };
  }

  /** Sends a code for the step by `methodId` (the first send of a method in a challenge is not a resend). */
  async function sendCode(user: UserRow, row: LoginChallengeRow, reason: StepReason, methodId: string, context: RequestContext) {
    const method = deps.methods.get(methodId);
    if (reason === 'enroll' || !method?.challenge) throw new AppError('method_not_allowed', 'this method sends no code', 400);
    const resend = await deps.codes.hasSent(row.id, methodId as CodeChannel);
    const message = await deps.notices.verificationMessage(user, reason, signInInfo(row, context));
    const { destination } = await method.challenge(await stepOf(user, row.id, reason), { resend, message, context });
    return { method: methodId, destination };
  }

  /** The method a step is shown with first: the preferred factor, an authenticator, else email, SMS, whatever is offered. */
  async function firstMethod(user: UserRow, reason: StepReason, methods: string[]): Promise<string | undefined> {
    if (reason === 'enroll') return undefined;
    if (reason === 'mfa') {
      const preferred = (await deps.factors.listActive(user.id)).find((f) => f.preferred)?.type;
      if (preferred && preferred !== 'recovery_code' && methods.includes(preferred)) return preferred;
      if (methods.includes('totp')) return 'totp';
    }
    return methods.find((m) => m === 'email') ?? methods.find((m) => CODE_METHODS.has(m)) ?? methods[0];
  }

  /** The method whose code is sent as soon as a step begins, when the first method sends one. */
  async function firstCodeMethod(user: UserRow, reason: StepReason, methods: string[]): Promise<string | undefined> {
    const method = await firstMethod(user, reason, methods);
    return method && CODE_METHODS.has(method) ? method : undefined;
  }

  async function openChallenge(user: UserRow, origin: LoginOrigin, steps: StepReason[], context: RequestContext): Promise<ChallengeResponse> {
    const challengeId = randomToken();
    const now = deps.clock();
    const reason = steps[0]!;
    const rowId = randomUUID();
    const methods = await methodsFor(user, rowId, reason);
    // A browser login replaces its interaction's challenge (formLogin); an app login replaces its device's.
    if (origin.channel === 'api') await secrets.consumeApiLoginChallengesOfDevice(user.id, origin.deviceId ?? null, now);
    const deviceDigest = origin.deviceDigest ?? (origin.channel === 'api' ? cookieDeviceDigest(pendingDeviceNonce(rowId)) : undefined);
    const row = await secrets.insertLoginChallenge({
      id: rowId,
      challengeHash: sha256(challengeId),
      userId: user.id,
      methods,
      steps,
      amr: ['pwd'],
      channel: origin.channel,
      clientId: origin.clientId ?? null,
      interactionUid: origin.interactionUid ?? null,
      ipAddress: context.ip ?? null,
      deviceDigest: deviceDigest ?? null,
      knownDevice: origin.knownDevice,
      deviceId: origin.deviceId ?? null,
      deviceName: origin.deviceName ?? null,
      createdAt: now,
      expiresAt: addSeconds(now, CHALLENGE_TTL_SECONDS),
    });
    await secrets.consumeLoginChallengesBeyond(user.id, row.id, MAX_OPEN_CHALLENGES_PER_USER - 1, now);
    await deps.audit.record({
      type: 'login.challenge',
      outcome: 'success',
      actor: { type: 'user', id: user.id },
      subject: userRef(user),
      clientId: origin.clientId,
      context: auditContext(context),
      details: { reason, steps, methods, channel: origin.channel },
    });
    const first = await firstCodeMethod(user, reason, methods);
    let sent: ChallengeResponse['sent'];
    try {
      sent = first ? await sendCode(user, row, reason, first, context) : undefined;
    } catch (err) {
      // A code that cannot go out (send limit reached, perhaps by someone flooding the number; provider
      // down) must not lock out a user who can pass the step without one (authenticator, recovery code):
      // the challenge stands without `sent`, and /verify/resend/ reports the problem.
      if (!methods.some((m) => !CODE_METHODS.has(m))) throw err;
      // (A provider failure was audited where it happened.)
      if (!(err instanceof AppError && err.code === 'delivery_unavailable')) await deps.audit.record({
        type: 'mfa.code_sent',
        outcome: 'failure',
        actor: { type: 'system' },
        subject: userRef(user),
        context: auditContext(context),
        details: { channel: first, reason: err instanceof AppError ? err.code : 'delivery_failed', challenge: true },
      });
    }
    return { mfa_required: true, challenge_id: challengeId, reason, methods, expires_in: CHALLENGE_TTL_SECONDS, sent };
  }

  /**
   * Everything a finished login leaves behind: counters reset, device trusted, network remembered, notices
   * sent. `facts` are the plan's when the login completes at once (read again after a challenge: time passed).
   */
  async function afterLogin(user: UserRow, origin: LoginOrigin & { counted: boolean }, passed: StepReason[], context: RequestContext, facts?: LoginFacts): Promise<void> {
    const now = deps.clock();
    const { trusted, network, newNetwork } = facts ?? (await whereFrom(user, origin.deviceDigest, context.ip));
    if (origin.counted || passed.length) await deps.bruteForce.recordSuccess(attemptOf(user, origin, context.ip));
    // From now on this device keeps its own brute-force count (see checkPassword).
    const knownDigest = origin.deviceDigest ?? origin.cookieDigest;
    if (knownDigest) await deps.bruteForce.rememberDevice(user.id, knownDigest, now);
    const device = describeDevice(context.userAgent, origin.deviceId, origin.deviceName);
    // What the user is told about afterwards: a device never verified before that got in with a factor
    // (its code went to the factor, so no email said so), or a new network (IP_VERIFICATION=notify). A login
    // that just passed a device or network check already got an email with the same details (unless it
    // finished from another network than it started from).
    const notices: Array<'new_device' | 'new_ip'> = [];
    const toldOfThisNetwork = (passed.includes('new_ip') || passed.includes('new_device')) && networkOf(origin.startIp ?? context.ip) === networkOf(context.ip);
    if (origin.deviceDigest) {
      if (passed.length) {
        const row = await mfa.trustDevice({ userId: user.id, deviceDigest: origin.deviceDigest, deviceInfo: device, ipAddress: context.ip ?? null, now, trustedUntil: addSeconds(now, policy.deviceTrustTtl) });
        if (!trusted) {
          await deps.audit.record({ type: 'device.trusted', outcome: 'success', actor: { type: 'user', id: user.id }, subject: userRef(user), context: auditContext(context), details: { device_id: row.id, until: row.trustedUntil.toISOString() } });
          if (policy.deviceVerification === 'challenge' && passed.includes('mfa')) notices.push('new_device');
        }
      } else if (trusted) await mfa.touchTrustedDevice(trusted.id, context.ip ?? null, now);
    }
    if (network) {
      await mfa.rememberNetwork(user.id, network, now);
      if (newNetwork && !toldOfThisNetwork) {
        await deps.audit.record({ type: 'login.new_ip', outcome: 'success', actor: { type: 'user', id: user.id }, subject: userRef(user), context: auditContext(context), details: { network, notified: policy.ipVerification === 'notify' } });
        if (policy.ipVerification === 'notify') notices.push('new_ip');
      }
    }
    if (notices.length) {
      await deps.notices.newSignIn(user, notices, { device, ip: context.ip, at: now, deviceDigest: origin.deviceDigest, sessionTtl: deps.sessionTtl[origin.channel] });
    }
  }

  /**
   * The device token of an app login that proved none, fixed when its challenge opens (so the step's email,
   * its "This wasn't me" link and the trust it earns all name the same device) and answered only when the
   * sign-in completes. Its nonce is derived from the challenge row with a server key, so nothing secret is
   * stored and a database reader cannot compute it.
   */
  const pendingDeviceNonce = (challengeRowId: string) => hmacDigest(deps.deviceCookieKey, `pending-device-token:${challengeRowId}`);

  function pendingDeviceToken(user: UserRow, row: LoginChallengeRow): string | undefined {
    const nonce = pendingDeviceNonce(row.id);
    if (row.channel !== 'api' || row.deviceDigest !== cookieDeviceDigest(nonce)) return undefined;
    return issueDeviceCookie(deps.deviceCookieKey, identifierDigest(normalizeEmail(user.email)), nonce);
  }

  async function startSession(user: UserRow, input: { deviceId?: string | null | undefined; deviceName?: string | null | undefined }, amr: string[], context: RequestContext): Promise<TokenPair> {
    const device: DeviceInfo = describeDevice(context.userAgent, input.deviceId ?? undefined, input.deviceName ?? undefined);
    const pair = await deps.sessions.createSession({ userId: user.id, device, deviceId: input.deviceId ?? undefined, ip: context.ip, amr }, context);
    await deps.audit.record({
      type: 'login',
      outcome: 'success',
      actor: { type: 'user', id: user.id },
      subject: userRef(user),
      context,
      details: { method: amr.join('+'), channel: 'api', session_id: pair.session_id },
    });
    return pair;
  }

  const originOf = (row: LoginChallengeRow): LoginOrigin & { counted: boolean } => ({
    channel: row.channel,
    clientId: row.clientId ?? undefined,
    interactionUid: row.interactionUid ?? undefined,
    deviceId: row.deviceId ?? undefined,
    deviceName: row.deviceName ?? undefined,
    deviceDigest: row.deviceDigest ?? undefined,
    knownDevice: row.knownDevice,
    startIp: row.ipAddress ?? undefined,
    counted: true,
  });

  /** The checks every use of a challenge passes: open, unexpired, under the attempt limit, its user still able to sign in. */
  async function usable(row: LoginChallengeRow | undefined, context: RequestContext): Promise<{ row: LoginChallengeRow; user: UserRow }> {
    if (!row) throw challengeError.invalid();
    if (row.consumedAt) throw challengeError.consumed();
    if (row.expiresAt <= deps.clock()) {
      await deps.audit.record({ type: 'login.challenge_expired', outcome: 'failure', actor: { type: 'anonymous' }, subject: { type: 'user', id: row.userId }, clientId: row.clientId ?? undefined, context: auditContext(context), details: { reason: row.steps[0] } });
      throw challengeError.expired();
    }
    if (row.attempts >= CHALLENGE_MAX_ATTEMPTS) throw challengeError.exhausted();
    const user = await deps.users.findUserById(row.userId);
    if (!user || user.disabled || user.passwordResetRequired) throw challengeError.invalid();
    return { row, user };
  }

  /**
   * A sign-in continued from another address than it started from (a phone moving from Wi-Fi to mobile
   * data): allowed and audited, unless SESSION_IP_BINDING=strict. The new network is judged as if the login
   * had come from there: where the login proves nothing by a code yet (a trusted device enrolling a factor)
   * and IP_VERIFICATION=challenge finds the network new, a `new_ip` step comes first. Afterwards the
   * completed login remembers (and, with `notify`, reports) the network it finished from.
   */
  async function followAddress(found: { row: LoginChallengeRow; user: UserRow }, context: RequestContext) {
    const { row, user } = found;
    if ((row.ipAddress ?? undefined) === context.ip) return found;
    if (deps.ipBinding === 'strict') throw challengeError.invalid();
    await deps.audit.record({
      type: 'login.ip_changed',
      outcome: 'success',
      actor: { type: 'user', id: user.id },
      subject: userRef(user),
      clientId: row.clientId ?? undefined,
      context: auditContext(context),
      details: { from_network: networkOf(row.ipAddress ?? undefined), to_network: networkOf(context.ip), channel: row.channel, step: row.steps[0] },
    });
    const provedByCode = row.amr.some((a) => a !== 'pwd') || row.steps.some((step) => step !== 'enroll');
    if (provedByCode || policy.ipVerification !== 'challenge' || !(await whereFrom(user, undefined, context.ip)).newNetwork) return found;
    const steps = ['new_ip', ...row.steps];
    const methods = await methodsFor(user, row.id, 'new_ip');
    if (!(await secrets.advanceLoginChallenge(row.id, row.steps, { steps, methods, amr: row.amr, expiresAt: row.expiresAt }))) throw challengeError.consumed();
    const moved = { ...row, steps, methods };
    const first = await firstCodeMethod(user, 'new_ip', methods);
    if (first) await sendCode(user, moved, 'new_ip', first, context);
    return { row: moved, user };
  }

  /** An API challenge answers only to the device its login came from (`device_mismatch` otherwise), from any address (see followAddress). */
  async function apiChallenge(challengeId: string, deviceId: string | undefined, context: RequestContext) {
    const row = await secrets.findLoginChallengeByHash(sha256(challengeId));
    if (!row || row.channel !== 'api') throw challengeError.invalid();
    if ((row.deviceId ?? undefined) !== deviceId) throw challengeError.deviceMismatch();
    return followAddress(await usable(row, context), context);
  }

  /** A browser challenge is found by its interaction (bound to the browser by the provider's cookie), from any address (see followAddress). */
  async function formChallenge(uid: string, context: RequestContext) {
    const row = await secrets.findOpenLoginChallengeByInteraction(uid);
    if (row && row.channel !== 'form') throw challengeError.invalid();
    return followAddress(await usable(row, context), context);
  }

  /**
   * The brute-force lock (and progressive delay) of the login's identifier or device, checked before every
   * code of a sign-in is looked at, as at the password step: wrong codes feed the same counts, so a stolen
   * password cannot buy unlimited guesses at the second factor by opening challenge after challenge.
   */
  async function assertNotLocked(user: UserRow, row: LoginChallengeRow, context: RequestContext): Promise<void> {
    try {
      await deps.bruteForce.assertAllowed(attemptOf(user, originOf(row), context.ip));
    } catch (err) {
      await deps.audit.record({
        type: 'login.challenge_failed',
        outcome: 'failure',
        actor: { type: 'anonymous' },
        subject: userRef(user),
        clientId: row.clientId ?? undefined,
        context: auditContext(context),
        details: { reason: row.steps[0], error: 'too_many_attempts' },
      });
      throw err;
    }
  }

  type StepOutcome = { done: true; amr: string[]; passed: StepReason[]; deviceToken?: string | undefined } | { done: false; reason: StepReason; methods: string[]; sent?: ChallengeResponse['sent'] };

  /** The current step is passed with `amr`: move to the next one, or close the challenge when it was the last. */
  async function advance(user: UserRow, row: LoginChallengeRow, amr: string | undefined, context: RequestContext): Promise<StepOutcome> {
    const [current, ...rest] = row.steps as StepReason[];
    const amrs = [...new Set([...row.amr, ...(amr ? [amr] : []), ...(current === 'mfa' || current === 'enroll' ? ['mfa'] : [])])];
    await deps.audit.record({ type: 'login.challenge_passed', outcome: 'success', actor: { type: 'user', id: user.id }, subject: userRef(user), clientId: row.clientId ?? undefined, context: auditContext(context), details: { reason: current, amr: amrs, remaining: rest } });
    const now = deps.clock();
    if (!rest.length) {
      if (!(await secrets.consumeLoginChallenge(row.id, now))) throw challengeError.consumed();
      const passed = row.steps as StepReason[];
      await afterLogin(user, originOf(row), passed, context);
      return { done: true, amr: amrs, passed, deviceToken: pendingDeviceToken(user, row) };
    }
    const next = rest[0]!;
    const methods = await methodsFor(user, row.id, next);
    if (!(await secrets.advanceLoginChallenge(row.id, row.steps, { steps: rest, methods, amr: amrs, expiresAt: addSeconds(now, CHALLENGE_TTL_SECONDS) }))) throw challengeError.consumed();
    const fresh = { ...row, steps: rest, methods, amr: amrs };
    const first = await firstCodeMethod(user, next, methods);
    const sent = first ? await sendCode(user, fresh, next, first, context) : undefined;
    return { done: false, reason: next, methods, sent };
  }

  /**
   * Checks a code for the current step. Failures: a method the step does not offer → 400
   * `method_not_allowed`; a wrong code → 401 `invalid_code` with `attempts_left`; the fifth wrong code
   * ends the challenge (`too_many_attempts` afterwards).
   */
  async function verifyStep(user: UserRow, row: LoginChallengeRow, methodId: string, code: string, context: RequestContext): Promise<StepOutcome> {
    const reason = row.steps[0] as StepReason | undefined;
    if (!reason) throw challengeError.consumed();
    if (reason === 'enroll') throw new AppError('method_not_allowed', 'enrol a factor first (POST /api/auth/mfa/{totp|sms|email}/ with the challenge_id)', 400, { methods: row.methods });
    const method = row.methods.includes(methodId) ? deps.methods.get(methodId) : undefined;
    if (!method) throw new AppError('method_not_allowed', `method must be one of: ${row.methods.join(', ')}`, 400, { methods: row.methods });
    await assertNotLocked(user, row, context);
    const used = await secrets.countLoginChallengeAttempt(row.id, deps.clock(), CHALLENGE_MAX_ATTEMPTS);
    // No attempt left, or (raced by a parallel right code) the challenge was completed meanwhile.
    if (used === undefined) throw (await secrets.isLoginChallengeConsumed(row.id)) ? challengeError.consumed() : challengeError.exhausted();
    if (!(await method.verify(await stepOf(user, row.id, reason), code))) {
      const attemptsLeft = CHALLENGE_MAX_ATTEMPTS - used;
      await deps.bruteForce.recordFailure(attemptOf(user, originOf(row), context.ip), auditContext(context));
      await deps.audit.record({
        type: 'login.challenge_failed',
        outcome: 'failure',
        actor: { type: 'anonymous' },
        subject: userRef(user),
        clientId: row.clientId ?? undefined,
        context: auditContext(context),
        details: { reason, method: method.id, attempts_left: attemptsLeft },
      });
      throw new AppError('invalid_code', attemptsLeft > 0 ? 'the code is incorrect' : 'the code is incorrect; this login has ended, sign in again', 401, { attempts_left: attemptsLeft });
    }
    await secrets.refundLoginChallengeAttempt(row.id);
    return advance(user, row, method.amr, context);
  }

  const response = (challengeId: string, outcome: Extract<StepOutcome, { done: false }>): ChallengeResponse => ({
    mfa_required: true,
    challenge_id: challengeId,
    reason: outcome.reason,
    methods: outcome.methods,
    expires_in: CHALLENGE_TTL_SECONDS,
    sent: outcome.sent,
  });

  /** An open challenge whose current step is enrolment (and whose account is not locked): the user a factor may be enrolled for. */
  async function enrolling(pending: Promise<{ row: LoginChallengeRow; user: UserRow }>, context: RequestContext) {
    const found = await pending;
    if (found.row.steps[0] !== 'enroll') throw new AppError('method_not_allowed', 'this login does not need a factor enrolled now', 400);
    await assertNotLocked(found.user, found.row, context);
    return found;
  }

  return {
    checkPassword,

    /** The answer, and a device cookie to set when the browser has none for this account yet. */
    async login(input: LoginInput, context: RequestContext): Promise<{ result: SignedIn | ChallengeResponse; deviceCookie: string | undefined }> {
      const checked = await checkPassword(input, { ...context, channel: 'api' });
      const { user, deviceCookie } = checked;
      const origin: LoginOrigin = { channel: 'api', deviceId: input.deviceId, deviceName: input.deviceName, deviceDigest: checked.deviceDigest, cookieDigest: deviceCookie ? checked.cookieDigest : undefined, knownDevice: Boolean(checked.knownDevice) };
      const planned = await plan(user, origin, context.ip);
      if (!planned.steps.length) {
        // An app without a device token gets the cookie just issued as its token (one secret, two carriers).
        const deviceToken = !checked.deviceDigest && deviceCookie ? deviceCookie : undefined;
        await afterLogin(user, { ...origin, deviceDigest: deviceToken ? checked.cookieDigest : origin.deviceDigest, counted: checked.counted }, [], context, planned.facts);
        return { result: { ...(await startSession(user, input, ['pwd'], context)), device_token: deviceToken }, deviceCookie };
      }
      return { result: await openChallenge(user, origin, planned.steps, context), deviceCookie };
    },

    /** Completes the current step of an API login: the token pair after the last step, else the next step. */
    async verify(input: { challengeId: string; method: string; code: string; deviceId?: string | undefined }, context: RequestContext): Promise<SignedIn | ChallengeResponse> {
      const { row, user } = await apiChallenge(input.challengeId, input.deviceId, context);
      const outcome = await verifyStep(user, row, input.method, input.code, context);
      if (!outcome.done) return response(input.challengeId, outcome);
      return { ...(await startSession(user, { deviceId: row.deviceId, deviceName: row.deviceName }, outcome.amr, context)), device_token: outcome.deviceToken };
    },

    /** Sends another code for the current step (429 with Retry-After within the resend limits). */
    async resend(input: { challengeId: string; method: string; deviceId?: string | undefined }, context: RequestContext) {
      const { row, user } = await apiChallenge(input.challengeId, input.deviceId, context);
      const reason = row.steps[0] as StepReason;
      if (!row.methods.includes(input.method) || !CODE_METHODS.has(input.method)) throw new AppError('method_not_allowed', `a code can be sent for: ${row.methods.filter((m) => CODE_METHODS.has(m)).join(', ') || 'none of this step\'s methods'}`, 400);
      return { ...(await sendCode(user, row, reason, input.method, context)), expires_in: CHALLENGE_TTL_SECONDS };
    },

    /** The user of an API login waiting for enrolment (the enrolment endpoints accept its challenge instead of a token). */
    async enrollmentForChallenge(challengeId: string, deviceId: string | undefined, context: RequestContext): Promise<UserRow> {
      return (await enrolling(apiChallenge(challengeId, deviceId, context), context)).user;
    },

    /** A factor was confirmed for an API login waiting for enrolment: the login goes on (or completes). */
    async completeEnrollment(challengeId: string, deviceId: string | undefined, factorType: string, context: RequestContext): Promise<SignedIn | ChallengeResponse> {
      const { row, user } = await enrolling(apiChallenge(challengeId, deviceId, context), context);
      const outcome = await advance(user, row, deps.methods.get(factorType)?.amr, context);
      if (!outcome.done) return response(challengeId, outcome);
      return { ...(await startSession(user, { deviceId: row.deviceId, deviceName: row.deviceName }, outcome.amr, context)), device_token: outcome.deviceToken };
    },

    /**
     * The browser's password step. Done: the interaction may write its login result. Pending: the
     * interaction shows the step (see `pendingForm`). A new password attempt ends the interaction's
     * earlier challenges.
     */
    async formLogin(
      input: LoginInput,
      context: RequestContext & { clientId: string; interactionUid: string },
    ): Promise<{ deviceCookie: string | undefined; completed?: CompletedLogin | undefined }> {
      const checked = await checkPassword(input, { ...context, channel: 'form' });
      const { user, deviceCookie } = checked;
      await secrets.consumeLoginChallengesByInteraction(context.interactionUid, deps.clock());
      const origin: LoginOrigin = { channel: 'form', clientId: context.clientId, interactionUid: context.interactionUid, deviceDigest: checked.deviceDigest, knownDevice: Boolean(checked.knownDevice) };
      const planned = await plan(user, origin, context.ip);
      if (!planned.steps.length) {
        await afterLogin(user, { ...origin, counted: checked.counted }, [], context, planned.facts);
        return { deviceCookie, completed: { user, amr: ['pwd'] } };
      }
      await openChallenge(user, origin, planned.steps, context);
      return { deviceCookie };
    },

    /** The browser login's current step, for its page; undefined when the interaction has none open. */
    async pendingForm(uid: string, context: RequestContext) {
      if (!(await secrets.findOpenLoginChallengeByInteraction(uid))) return undefined;
      const { row, user } = await formChallenge(uid, context);
      const reason = row.steps[0] as StepReason;
      const factors = await deps.factors.listActive(user.id);
      const destination = (channel: CodeChannel) => {
        const to = deps.factors.destinationFor(user, factors, channel, reason === 'mfa');
        return to ? maskDestination(channel, to) : undefined;
      };
      return {
        user,
        reason,
        methods: row.methods,
        /** The method shown first (its code, for SMS and email, was sent when the step began). */
        firstMethod: await firstMethod(user, reason, row.methods),
        destinations: { sms: destination('sms'), email: destination('email') },
        attemptsLeft: CHALLENGE_MAX_ATTEMPTS - row.attempts,
        expiresAt: row.expiresAt,
      };
    },

    async verifyForm(uid: string, method: string, code: string, context: RequestContext): Promise<CompletedLogin | undefined> {
      const { row, user } = await formChallenge(uid, context);
      const outcome = await verifyStep(user, row, method, code, context);
      return outcome.done ? { user, amr: outcome.amr } : undefined;
    },

    async resendForm(uid: string, method: string, context: RequestContext) {
      const { row, user } = await formChallenge(uid, context);
      if (!row.methods.includes(method) || !CODE_METHODS.has(method)) throw new AppError('method_not_allowed', 'no code can be sent for this method', 400);
      return sendCode(user, row, row.steps[0] as StepReason, method, context);
    },

    async enrollmentForForm(uid: string, context: RequestContext): Promise<UserRow> {
      return (await enrolling(formChallenge(uid, context), context)).user;
    },

    async completeFormEnrollment(uid: string, factorType: string, context: RequestContext): Promise<CompletedLogin | undefined> {
      const { row, user } = await enrolling(formChallenge(uid, context), context);
      const outcome = await advance(user, row, deps.methods.get(factorType)?.amr, context);
      return outcome.done ? { user, amr: outcome.amr } : undefined;
    },

    /** Whether an SSO session with `amr` still satisfies the account (the provider's login prompt re-asks otherwise). */
    async sessionSatisfiesMfa(accountId: string, amr: string[] | undefined): Promise<boolean> {
      if (amr?.includes('mfa')) return true;
      if (policy.required || (await deps.roleRequiresMfa(accountId))) return false;
      return (await deps.factors.listActive(accountId)).every((f) => f.type === 'recovery_code');
    },
  };
}
export type LoginService = ReturnType<typeof createLoginService>;
