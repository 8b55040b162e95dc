/**
 * Password login for first-party apps (POST /api/auth/login/ and /verify/) and the browser form.
 *
 * Order of checks, each a guard: brute-force state (429 before any password work) → password (always
 * verified, against a dummy hash when there is no account, so unknown, wrong and disabled answer the
 * same in body and time) → further steps (a challenge when the user has MFA methods) → session.
 */
import type { DeviceInfo } from '../db/schema/index.js';
import { AppError } from '../errors/index.js';
import { addSeconds, type Clock } from '../lib/clock.js';
import { randomToken, sha256 } from '../lib/crypto.js';
import { describeDevice } from '../lib/device.js';
import { issueDeviceCookie, verifyDeviceCookie } from '../lib/device-cookie.js';
import { createOneTimeSecretQueries } from '../queries/one-time-secrets.js';
import type { Db } from '../db/client.js';
import type { UserRow } from '../queries/users.js';
import type { AuditService, RequestContext } from './audit.js';
import type { AuthMethodRegistry } from './auth-methods.js';
import { identifierDigest, type BruteForceProtector } from './brute-force.js';
import type { SessionService, TokenPair } from './sessions.js';
import { normalizeEmail, type UserService } from './users.js';

/** A pending login's challenge: short-lived and bounded (SECURITY.md: ≤ 10 minutes, ≤ 5 attempts). */
export const CHALLENGE_TTL_SECONDS = 300;
export const CHALLENGE_MAX_ATTEMPTS = 5;

export interface ChallengeResponse {
  mfa_required: true;
  challenge_id: string;
  methods: string[];
  expires_in: number;
}

export interface LoginInput {
  email: string;
  password: string;
  deviceId?: string | undefined;
  deviceName?: string | undefined;
  /** The browser's device cookie, as sent (see lib/device-cookie.ts). */
  deviceCookie?: string | undefined;
}

export const appDeviceDigest = (deviceId: string) => sha256(`app:${deviceId}`);
export const cookieDeviceDigest = (nonce: string) => sha256(`cookie:${nonce}`);

/** A placeholder user id for the known-device lookup when there is no account (same query, same time). */
const NO_USER = '00000000-0000-0000-0000-000000000000';

export function createLoginService(deps: {
  db: Db;
  clock: Clock;
  users: UserService;
  bruteForce: BruteForceProtector;
  sessions: SessionService;
  methods: AuthMethodRegistry;
  audit: AuditService;
  deviceCookieKey: Buffer;
}) {
  const secrets = createOneTimeSecretQueries(deps.db);

  const invalidCredentials = () => new AppError('invalid_credentials', 'the email or password is incorrect', 401);

  /**
   * Checks the first factor for any login (API or browser form). Returns the user when the password is
   * right; throws 429 `too_many_attempts` or 401 `invalid_credentials`.
   */
  async function checkPassword(
    input: LoginInput,
    context: RequestContext & { clientId?: string | undefined; channel: 'api' | 'form' },
  ): Promise<{ user: UserRow; knownDevice: string | undefined; deviceCookie: string | undefined }> {
    const identifier = normalizeEmail(input.email);
    const idDigest = identifierDigest(identifier);
    // The account is looked up before the password check only for the known-device test; the password
    // check below looks it up again with its hash (the same two queries whether or not it exists).
    const user = input.deviceId ? await deps.users.findUserByEmail(identifier) : undefined;
    const cookieNonce = verifyDeviceCookie(deps.deviceCookieKey, idDigest, input.deviceCookie);
    let knownDevice: string | undefined = cookieNonce ? cookieDeviceDigest(cookieNonce) : undefined;
    if (!knownDevice && input.deviceId) {
      const digest = appDeviceDigest(input.deviceId);
      // The same query whether or not the account exists, so its cost reveals nothing.
      if (await deps.bruteForce.isKnownDevice(user?.id ?? NO_USER, digest)) knownDevice = digest;
    }
    const attempt = { identifier, ip: context.ip, knownDevice };
    const audit = { clientId: context.clientId, context: { ip: context.ip, userAgent: context.userAgent, requestId: context.requestId } };

    let counted: boolean;
    try {
      counted = await deps.bruteForce.assertAllowed(attempt);
    } catch (err) {
      await deps.audit.record({
        type: 'login',
        outcome: 'failure',
        actor: { type: 'anonymous' },
        subject: user ? { type: 'user', id: user.id } : undefined,
        ...audit,
        details: { method: 'pwd', channel: context.channel, reason: 'too_many_attempts' },
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
        subject: account ? { type: 'user', id: account.id } : undefined,
        ...audit,
        details: { method: 'pwd', channel: context.channel, reason: !account ? 'unknown_account' : account.disabled ? 'disabled' : 'wrong_password' },
      });
      throw invalidCredentials();
    }
    if (counted) await deps.bruteForce.recordSuccess(attempt);
    if (input.deviceId) await deps.bruteForce.rememberDevice(account.id, appDeviceDigest(input.deviceId), deps.clock());
    // A browser without a valid cookie for this account gets one now: from then on it is a known device.
    return { user: account, knownDevice, deviceCookie: cookieNonce ? undefined : issueDeviceCookie(deps.deviceCookieKey, idDigest) };
  }

  async function startSession(user: UserRow, input: { deviceId?: string | null | undefined; deviceName?: string | null | undefined }, amr: string[], context: RequestContext): Promise<TokenPair> {
    const device: DeviceInfo = describeDevice(context.userAgent, input.deviceId ?? undefined, input.deviceName ?? undefined);
    const pair = await deps.sessions.createSession({ userId: user.id, device, deviceId: input.deviceId ?? undefined, ip: context.ip, amr }, context);
    await deps.audit.record({
      type: 'login',
      outcome: 'success',
      actor: { type: 'user', id: user.id },
      subject: { type: 'user', id: user.id },
      context,
      details: { method: amr.join('+'), channel: 'api', session_id: pair.session_id },
    });
    return pair;
  }

  return {
    checkPassword,

    /** The answer, and a device cookie to set when the browser has none for this account yet. */
    async login(input: LoginInput, context: RequestContext): Promise<{ result: TokenPair | ChallengeResponse; deviceCookie: string | undefined }> {
      const { user, deviceCookie } = await checkPassword(input, { ...context, channel: 'api' });
      const methods = await deps.methods.configuredFor(user);
      if (!methods.length) return { result: await startSession(user, input, ['pwd'], context), deviceCookie };

      const challengeId = randomToken();
      const state: Record<string, unknown> = {};
      for (const m of methods) if (m.challenge) state[m.id] = (await m.challenge(user)) ?? {};
      const now = deps.clock();
      await secrets.insertLoginChallenge({
        challengeHash: sha256(challengeId),
        userId: user.id,
        methods: methods.map((m) => m.id),
        deviceId: input.deviceId ?? null,
        deviceName: input.deviceName ?? null,
        state,
        createdAt: now,
        expiresAt: addSeconds(now, CHALLENGE_TTL_SECONDS),
      });
      await deps.audit.record({
        type: 'login.challenge',
        outcome: 'success',
        actor: { type: 'user', id: user.id },
        subject: { type: 'user', id: user.id },
        context,
        details: { methods: methods.map((m) => m.id) },
      });
      return { result: { mfa_required: true, challenge_id: challengeId, methods: methods.map((m) => m.id), expires_in: CHALLENGE_TTL_SECONDS }, deviceCookie };
    },

    /**
     * Completes a pending login. Failures: unknown challenge, or one started with another device id →
     * 400 `invalid_challenge`; expired → 400 `challenge_expired`; already used → 400 `challenge_consumed`;
     * attempts exhausted → 429 `too_many_attempts`; a method the challenge does not offer → 400
     * `invalid_method`; a wrong code → 401 `invalid_code`.
     */
    async verify(input: { challengeId: string; method: string; code: string; deviceId?: string | undefined }, context: RequestContext): Promise<TokenPair> {
      const now = deps.clock();
      const row = await secrets.findLoginChallengeByHash(sha256(input.challengeId));
      if (!row || (row.deviceId ?? undefined) !== input.deviceId) throw new AppError('invalid_challenge', 'no such pending login', 400);
      if (row.consumedAt) throw new AppError('challenge_consumed', 'this login was already completed; sign in again', 400);
      if (row.expiresAt <= now) throw new AppError('challenge_expired', 'this login has expired; sign in again', 400);
      if (row.attempts >= CHALLENGE_MAX_ATTEMPTS) throw new AppError('too_many_attempts', 'too many wrong codes; sign in again', 429, { retry_after: 0 });
      const method = row.methods.includes(input.method) ? deps.methods.get(input.method) : undefined;
      if (!method) throw new AppError('invalid_method', `method must be one of: ${row.methods.join(', ')}`, 400);
      if (!(await secrets.countLoginChallengeAttempt(row.id, now, CHALLENGE_MAX_ATTEMPTS))) {
        throw new AppError('too_many_attempts', 'too many wrong codes; sign in again', 429, { retry_after: 0 });
      }
      const user = await deps.users.findUserById(row.userId);
      if (!user || user.disabled) throw new AppError('invalid_challenge', 'no such pending login', 400);
      const state = (row.state[method.id] ?? {}) as Record<string, unknown>;
      if (!(await method.verify(user, input.code, state))) {
        await deps.audit.record({ type: 'login', outcome: 'failure', actor: { type: 'anonymous' }, subject: { type: 'user', id: user.id }, context, details: { method: method.id, reason: 'wrong_code' } });
        throw new AppError('invalid_code', 'the code is incorrect', 401);
      }
      if (!(await secrets.consumeLoginChallenge(row.id, now))) throw new AppError('challenge_consumed', 'this login was already completed; sign in again', 400);
      return startSession(user, { deviceId: row.deviceId, deviceName: row.deviceName }, ['pwd', method.amr], context);
    },
  };
}
export type LoginService = ReturnType<typeof createLoginService>;
