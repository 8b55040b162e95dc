/**
 * Size: about 360 lines on purpose: the state machine's transitions and their guards read best in one file,
 * under the step graph that documents them.
 *
 * The login challenge: a sign-in waiting for its further steps, as a state machine kept server-side (one
 * row of login_challenges; `steps` is the queue still to pass, its head the current step).
 *
 *   password ─▶ plan ─▶ no step ─────────────────────────────────────────────────▶ signed in
 *                  └──▶ open ─▶ [step] ─passed─▶ [next step] … ─last passed─▶ consumed ─▶ signed in
 *                                 │ ├─ wrong code ─▶ same step, one attempt less; the 5th ─▶ exhausted
 *                                 │ ├─ CHALLENGE_TTL_SECONDS pass ─────────────────────────▶ expired
 *                                 │ ├─ account locked, disabled or reset ──────────────────▶ refused
 *                                 │ └─ newer login of the device or interaction, the 6th
 *                                 │    open one of the user, password change ──────────────▶ consumed
 *                                 └─ continued from another network while only enrolling (followAddress):
 *                                    `new_ip` is put in front when IP_VERIFICATION=challenge finds it new
 *
 *   Step queues (plan.ts): [mfa] · [new_device] · [new_ip] · [new_device, enroll] · [new_ip, enroll] · [enroll]
 *
 * A step is passed with a method the step offers (auth-methods.ts), or, for `enroll`, by confirming a
 * factor. Entering a step sends its first code when its first method sends one. A challenge is bound to its
 * login (user, client, device id, interaction), not to the address. Wrong codes count against the
 * challenge and feed the brute-force counters, which are reset only by a completed login; the lock is
 * checked before every code, as at the password step.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import { addSeconds, type Clock } from '../../lib/clock.js';
import { randomToken, type TokenDigest } from '../../lib/crypto.js';
import { describeDevice } from '../../lib/device.js';
import { networkOf } from '../../lib/network.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createOneTimeSecretQueries, type LoginChallengeRow } from '../../queries/one-time-secrets.js';
import type { UserRow } from '../../queries/users.js';
import type { AuditService } from '../audit.js';
import type { AuthMethodRegistry, StepContext, StepReason } from '../auth-methods.js';
import type { BruteForceProtector } from '../brute-force.js';
import type { CodeChannel, OtpCodeService } from '../mfa/codes.js';
import type { FactorService } from '../mfa/factors.js';
import type { SecurityNotices } from '../mfa/notices.js';
import type { UserService } from '../users.js';
import type { AfterLogin } from './after-login.js';
import { pendingDeviceDigest, pendingDeviceToken } from './first-factor.js';
import { attemptOf, auditContext, originOf, userRef, type LoginChannel, type LoginOrigin } from './origin.js';
import { CODE_METHODS, ENROLLABLE_METHODS, firstMethod, type LoginPolicy } from './plan.js';
import type { RiskFacts } from './risk.js';

/** A pending login's challenge: short-lived and bounded (one-time codes: ≤ 10 minutes, ≤ 5 attempts; NIST SP 800-63B §5.1.3). */
export const CHALLENGE_TTL_SECONDS = 300;
export const CHALLENGE_MAX_ATTEMPTS = 5;
/**
 * Open sign-ins a user may have at once. With a stolen password, each challenge is 5 more guesses at the
 * second factor; the account lock (checked at every code) bounds guessing overall, and this bounds what a
 * burst of logins can open before the lock closes in. A new login replaces its device's unfinished one
 * and ends the oldest beyond this number.
 */
export const MAX_OPEN_CHALLENGES_PER_USER = 5;

export interface ChallengeResponse {
  mfa_required: true;
  challenge_id: string;
  reason: StepReason;
  methods: string[];
  expires_in: number;
  /** Where the first code of this step went, when one was sent. */
  sent?: { method: string; destination: string } | undefined;
}

/** Which open sign-in a step belongs to: an app's challenge id (with its device label), or a browser's interaction. */
export type ChallengeRef = { channel: 'api'; challengeId: string; deviceId?: string | undefined } | { channel: 'form'; interactionUid: string };

export type StepOutcome =
  | { done: true; amr: string[]; passed: StepReason[]; deviceToken?: string | undefined }
  | { done: false; reason: StepReason; methods: string[]; sent?: ChallengeResponse['sent'] };

export interface OpenChallenge {
  row: LoginChallengeRow;
  user: UserRow;
}

const challengeError = {
  invalid: () => new AppError('invalid_challenge', 'no such pending login', 400),
  deviceMismatch: () => new AppError('device_mismatch', 'device_id must be the one the login was started with', 400),
  consumed: () => new AppError('challenge_consumed', 'this login was already completed or replaced by a newer one; sign in again', 400),
  expired: () => new AppError('challenge_expired', 'this login has expired; sign in again', 400),
  exhausted: () => new AppError('too_many_attempts', 'too many wrong codes; sign in again', 429, { retry_after: 0 }),
};

export function createChallenges(deps: {
  db: Db;
  clock: Clock;
  users: UserService;
  bruteForce: BruteForceProtector;
  methods: AuthMethodRegistry;
  factors: FactorService;
  codes: OtpCodeService;
  notices: SecurityNotices;
  audit: AuditService;
  risk: RiskFacts;
  afterLogin: AfterLogin;
  deviceCookieKey: Buffer;
  /** Challenge ids are stored as a keyed digest (lib/crypto.ts createTokenDigest). */
  tokenDigest: TokenDigest;
  policy: LoginPolicy;
  /** SESSION_IP_BINDING: with `strict`, a sign-in is finished only from the address it started from. */
  ipBinding: 'off' | 'strict';
  sessionTtl: Record<LoginChannel, number>;
}) {
  const secrets = createOneTimeSecretQueries(deps.db);

  async function stepOf(user: UserRow, challengeId: string, reason: Exclude<StepReason, 'enroll'>): Promise<StepContext> {
    return { user, factors: await deps.factors.listActive(user.id), reason, challengeId };
  }

  async function methodsFor(user: UserRow, challengeId: string, reason: StepReason): Promise<string[]> {
    if (reason === 'enroll') return [...ENROLLABLE_METHODS];
    return (await deps.methods.configuredFor(await stepOf(user, challengeId, reason))).map((m) => m.id);
  }

  /** The method a step is shown with first (plan.ts), from the user's preferred factor. */
  async function firstMethodOf(user: UserRow, reason: StepReason, methods: string[]): Promise<string | undefined> {
    const preferred = reason === 'mfa' ? (await deps.factors.listActive(user.id)).find((f) => f.preferred)?.type : undefined;
    return firstMethod(reason, methods, preferred);
  }

  /** The method whose code is sent as soon as a step begins, when the first method sends one. */
  async function firstCodeMethod(user: UserRow, reason: StepReason, methods: string[]): Promise<string | undefined> {
    const method = await firstMethodOf(user, reason, methods);
    return method && CODE_METHODS.has(method) ? method : undefined;
  }

  /** Sends a code for the step by `methodId` (the first send of a method in a challenge is not a resend). */
  async function sendCode(user: UserRow, row: LoginChallengeRow, reason: StepReason, methodId: string, context: RequestContext) {
    const method = deps.methods.get(methodId);
    if (reason === 'enroll' || !method?.challenge) throw new AppError('method_not_allowed', 'this method sends no code', 400);
    const resend = await deps.codes.hasSent(row.id, methodId as CodeChannel);
    const message = await deps.notices.verificationMessage(user, reason, {
      device: describeDevice(context.userAgent, row.deviceId ?? undefined, row.deviceName ?? undefined),
      ip: context.ip,
      at: deps.clock(),
      deviceDigest: row.deviceDigest ?? undefined,
      sessionTtl: deps.sessionTtl[row.channel],
    });
    const { destination } = await method.challenge(await stepOf(user, row.id, reason), { resend, message, context });
    return { method: methodId, destination };
  }

  /** Opens a challenge for the planned steps and sends the first step's first code. */
  async function open(user: UserRow, origin: LoginOrigin, steps: StepReason[], context: RequestContext): Promise<ChallengeResponse> {
    const challengeId = randomToken();
    const now = deps.clock();
    const reason = steps[0]!;
    const rowId = randomUUID();
    const methods = await methodsFor(user, rowId, reason);
    // A browser login replaces its interaction's challenge (see endInteraction); an app login replaces its device's.
    if (origin.channel === 'api') await secrets.consumeApiLoginChallengesOfDevice(user.id, origin.deviceId ?? null, now);
    const deviceDigest = origin.deviceDigest ?? (origin.channel === 'api' ? pendingDeviceDigest(deps.deviceCookieKey, rowId) : undefined);
    const row = await secrets.insertLoginChallenge({
      id: rowId,
      challengeHash: deps.tokenDigest.stored(challengeId),
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

  /** The checks every use of a challenge passes: open, unexpired, under the attempt limit, its user still able to sign in. */
  async function usable(row: LoginChallengeRow | undefined, context: RequestContext): Promise<OpenChallenge> {
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
  async function followAddress(found: OpenChallenge, context: RequestContext): Promise<OpenChallenge> {
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
    if (provedByCode || deps.policy.ipVerification !== 'challenge' || !(await deps.risk.whereFrom(user.id, undefined, context.ip)).newNetwork) return found;
    const steps = ['new_ip', ...row.steps];
    const methods = await methodsFor(user, row.id, 'new_ip');
    if (!(await secrets.advanceLoginChallenge(row.id, row.steps, { steps, methods, amr: row.amr, expiresAt: row.expiresAt }))) throw challengeError.consumed();
    const moved = { ...row, steps, methods };
    const first = await firstCodeMethod(user, 'new_ip', methods);
    if (first) await sendCode(user, moved, 'new_ip', first, context);
    return { row: moved, user };
  }

  /**
   * The open challenge `ref` names. An app's answers only to the device its login came from
   * (`device_mismatch` otherwise); a browser's is found by its interaction (bound to the browser by the
   * provider's cookie). Either works from any address (see followAddress).
   */
  async function find(ref: ChallengeRef, context: RequestContext): Promise<OpenChallenge> {
    if (ref.channel === 'api') {
      const row = await secrets.findLoginChallengeByDigests(deps.tokenDigest.candidates(ref.challengeId));
      if (!row || row.channel !== 'api') throw challengeError.invalid();
      if ((row.deviceId ?? undefined) !== ref.deviceId) throw challengeError.deviceMismatch();
      return followAddress(await usable(row, context), context);
    }
    const row = await secrets.findOpenLoginChallengeByInteraction(ref.interactionUid);
    if (row && row.channel !== 'form') throw challengeError.invalid();
    return followAddress(await usable(row, context), context);
  }

  /**
   * The brute-force lock (and progressive delay) of the login's identifier or device, checked before every
   * code of a sign-in is looked at, as at the password step: wrong codes feed the same counts, so a stolen
   * password cannot buy unlimited guesses at the second factor by opening challenge after challenge.
   */
  async function assertNotLocked({ user, row }: OpenChallenge, context: RequestContext): Promise<void> {
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

  /** The current step is passed with `amr`: move to the next one, or close the challenge when it was the last. */
  async function advance({ user, row }: OpenChallenge, amr: readonly string[], context: RequestContext): Promise<StepOutcome> {
    const [current, ...rest] = row.steps as StepReason[];
    const amrs = [...new Set([...row.amr, ...amr, ...(current === 'mfa' || current === 'enroll' ? ['mfa'] : [])])];
    await deps.audit.record({ type: 'login.challenge_passed', outcome: 'success', actor: { type: 'user', id: user.id }, subject: userRef(user), clientId: row.clientId ?? undefined, context: auditContext(context), details: { reason: current, amr: amrs, remaining: rest } });
    const now = deps.clock();
    if (!rest.length) {
      if (!(await secrets.consumeLoginChallenge(row.id, now))) throw challengeError.consumed();
      const passed = row.steps as StepReason[];
      await deps.afterLogin(user, originOf(row), passed, context);
      return { done: true, amr: amrs, passed, deviceToken: pendingDeviceToken(deps.deviceCookieKey, user, row) };
    }
    const next = rest[0]!;
    const methods = await methodsFor(user, row.id, next);
    if (!(await secrets.advanceLoginChallenge(row.id, row.steps, { steps: rest, methods, amr: amrs, expiresAt: addSeconds(now, CHALLENGE_TTL_SECONDS) }))) throw challengeError.consumed();
    const fresh = { ...row, steps: rest, methods, amr: amrs };
    const first = await firstCodeMethod(user, next, methods);
    const sent = first ? await sendCode(user, fresh, next, first, context) : undefined;
    return { done: false, reason: next, methods, sent };
  }

  return {
    open,
    find,
    advance,
    sendCode,
    firstMethodOf,

    /** A new password attempt in a browser interaction ends the interaction's earlier challenges. */
    endInteraction: (interactionUid: string) => secrets.consumeLoginChallengesByInteraction(interactionUid, deps.clock()),
    /** Whether the browser interaction has a challenge open (used, expired or not). */
    hasOpen: async (interactionUid: string) => Boolean(await secrets.findOpenLoginChallengeByInteraction(interactionUid)),

    /**
     * Checks a code for the current step. Failures: a method the step does not offer → 400
     * `method_not_allowed`; a wrong code → 401 `invalid_code` with `attempts_left`; the fifth wrong code
     * ends the challenge (`too_many_attempts` afterwards).
     */
    async verifyStep(found: OpenChallenge, methodId: string, code: string, context: RequestContext): Promise<StepOutcome> {
      const { user, row } = found;
      const reason = row.steps[0] as StepReason | undefined;
      if (!reason) throw challengeError.consumed();
      if (reason === 'enroll') throw new AppError('method_not_allowed', 'enrol a factor first (POST /api/auth/mfa/{totp|sms|email}/ with the challenge_id)', 400, { methods: row.methods });
      const method = row.methods.includes(methodId) ? deps.methods.get(methodId) : undefined;
      if (!method) throw new AppError('method_not_allowed', `method must be one of: ${row.methods.join(', ')}`, 400, { methods: row.methods });
      await assertNotLocked(found, context);
      const used = await secrets.countLoginChallengeAttempt(row.id, deps.clock(), CHALLENGE_MAX_ATTEMPTS);
      // No attempt left, or (raced by a parallel right code) the challenge was completed meanwhile.
      if (used === undefined) throw (await secrets.isLoginChallengeConsumed(row.id)) ? challengeError.consumed() : challengeError.exhausted();
      const result = await method.verify(await stepOf(user, row.id, reason), code, auditContext(context));
      if (!result) {
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
      return advance(found, result === true ? [method.amr] : result.amr, context);
    },

    /** An open challenge whose current step is enrolment (and whose account is not locked): the user a factor may be enrolled for. */
    async enrolling(ref: ChallengeRef, context: RequestContext): Promise<OpenChallenge> {
      const found = await find(ref, context);
      if (found.row.steps[0] !== 'enroll') throw new AppError('method_not_allowed', 'this login does not need a factor enrolled now', 400);
      await assertNotLocked(found, context);
      return found;
    },
  };
}
export type Challenges = ReturnType<typeof createChallenges>;
