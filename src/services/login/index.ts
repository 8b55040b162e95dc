/**
 * Sign-in for first-party apps (POST /api/auth/login/ and /verify/) and for the browser (the OIDC login
 * interaction): one flow, keyed by channel (`api` | `form`), with one set of rules for both.
 *
 * The modules: first-factor.ts (password, brute-force state, device identification) → plan.ts (which
 * steps, from risk.ts's facts and the MFA policy) → challenge.ts (the steps' state machine) →
 * after-login.ts (what a finished sign-in leaves behind). Nothing that signs anyone in exists before every
 * step is done: only then this facade starts a session (API) or hands the interaction its `login` result
 * (browser), and writes the one `login` success event of either channel.
 */
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import type { DeviceInfo } from '../../lib/device.js';
import type { Clock } from '../../lib/clock.js';
import { describeDevice } from '../../lib/device.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { UserRow } from '../../queries/users.js';
import type { AuditService } from '../audit.js';
import type { AuthMethodRegistry, StepReason } from '../auth-methods.js';
import type { BruteForceProtector } from '../brute-force.js';
import { maskDestination, OTP_TTL_SECONDS, type CodeChannel, type OtpCodeService } from '../mfa/codes.js';
import type { FactorService } from '../mfa/factors.js';
import type { SecurityNotices } from '../mfa/notices.js';
import type { MfaPolicy } from '../mfa/policy.js';
import type { SessionService, TokenPair } from '../sessions.js';
import type { UserService } from '../users.js';
import { createAfterLogin } from './after-login.js';
import { CHALLENGE_MAX_ATTEMPTS, CHALLENGE_TTL_SECONDS, createChallenges, type ChallengeRef, type ChallengeResponse, type OpenChallenge, type StepOutcome } from './challenge.js';
import { createFirstFactor, type LoginInput } from './first-factor.js';
import { auditContext, userRef, type LoginChannel, type LoginOrigin } from './origin.js';
import { CODE_METHODS, planSteps, type LoginPolicy } from './plan.js';
import { createRiskFacts } from './risk.js';
import type { TokenDigest } from '../../lib/crypto.js';
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { PASSKEY_METHOD } from '../passkeys/method.js';
import type { PasskeyBinding, PasskeyService } from '../passkeys/service.js';

export { CHALLENGE_MAX_ATTEMPTS, CHALLENGE_TTL_SECONDS, MAX_OPEN_CHALLENGES_PER_USER, type ChallengeRef, type ChallengeResponse } from './challenge.js';
export type { LoginInput } from './first-factor.js';
export type { LoginChannel } from './origin.js';
export type { LoginPolicy } from './plan.js';

/** A completed API sign-in: the token pair, and the device token when this sign-in issued one. */
export type SignedIn = TokenPair & { device_token?: string | undefined };
/** A browser login that passed every step: what the interaction writes as its `login` result. */
export interface CompletedLogin {
  user: UserRow;
  amr: string[];
}
/** Where a sign-in starts: an app, or a browser's interaction of a client. */
export type LoginStart = { channel: 'api' } | { channel: 'form'; clientId: string; interactionUid: string };
/**
 * Where a passwordless (passkey) sign-in starts, with the device secrets it presents: an app (its
 * `device_id` label binds the passkey challenge) or a browser's interaction (binds it).
 */
export type PasskeyStart =
  | { channel: 'api'; deviceId?: string | undefined; deviceName?: string | undefined; deviceToken?: string | undefined; deviceCookie?: string | undefined }
  | { channel: 'form'; clientId: string; interactionUid: string; deviceCookie?: string | undefined };
/** Where passwordless options are asked from (the same binding as the sign-in that follows). */
export type PasskeyOptionsStart = { channel: 'api'; deviceId?: string | undefined } | { channel: 'form'; interactionUid: string };

const passwordlessBinding = (from: PasskeyOptionsStart): PasskeyBinding => (from.channel === 'api' ? { kind: 'device', id: from.deviceId ?? '' } : { kind: 'interaction', id: from.interactionUid });
/**
 * What a step answers, by channel. An app gets its token pair, or the next step to pass. A browser gets
 * the completed login, or nothing while a further step is pending (the interaction's page shows it).
 */
/** The challenge reference of a channel. */
export type RefOf<C extends LoginChannel> = Extract<ChallengeRef, { channel: C }>;
export type LoginAnswer<C extends LoginChannel> = C extends 'api' ? SignedIn | ChallengeResponse : CompletedLogin | undefined;

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
  mfaPolicy: MfaPolicy;
  passkeys: PasskeyService;
  deviceCookieKey: Buffer;
  /** Challenge ids are stored as a keyed digest (lib/crypto.ts createTokenDigest). */
  tokenDigest: TokenDigest;
  policy: LoginPolicy;
  /** SESSION_IP_BINDING: with `strict`, a sign-in is finished only from the address it started from. */
  ipBinding: 'off' | 'strict';
  /** Lifetimes of what a login starts (API session, browser SSO session), for the report links. */
  sessionTtl: Record<LoginChannel, number>;
}) {
  const { policy } = deps;
  const firstFactor = createFirstFactor(deps);
  const risk = createRiskFacts(deps);
  const afterLogin = createAfterLogin({ ...deps, risk });
  const challenges = createChallenges({ ...deps, risk, afterLogin });

  async function plan(user: UserRow, origin: LoginOrigin, ip: string | undefined) {
    const hasFactor = (await deps.factors.listActive(user.id)).some((f) => f.type !== 'recovery_code');
    const facts = await risk.whereFrom(user.id, origin.deviceDigest, ip);
    const mfaRequired = !hasFactor && (await deps.mfaPolicy.requiredFor(user.id));
    return { steps: planSteps({ hasFactor, mfaRequired, trustedDevice: Boolean(facts.trusted), newNetwork: facts.newNetwork }, policy), facts };
  }

  /** The one `login` success event of a sign-in, for either channel, once every step is done. */
  async function recordLogin(user: UserRow, channel: LoginChannel, amr: string[], context: RequestContext, extra: { clientId?: string | undefined; sessionId?: string | undefined }) {
    await deps.audit.record({
      type: 'login',
      outcome: 'success',
      actor: { type: 'user', id: user.id },
      subject: userRef(user),
      clientId: extra.clientId,
      context: auditContext(context),
      details: { method: amr.join('+'), channel, ...(extra.sessionId ? { session_id: extra.sessionId } : {}) },
    });
  }

  async function startSession(user: UserRow, device: { deviceId?: string | null | undefined; deviceName?: string | null | undefined }, amr: string[], context: RequestContext): Promise<TokenPair> {
    const info: DeviceInfo = describeDevice(context.userAgent, device.deviceId ?? undefined, device.deviceName ?? undefined);
    const pair = await deps.sessions.createSession({ userId: user.id, device: info, deviceId: device.deviceId ?? undefined, ip: context.ip, amr }, context);
    await recordLogin(user, 'api', amr, context, { sessionId: pair.session_id });
    return pair;
  }

  /** What a challenge step answers on its channel (see LoginAnswer). */
  async function answer<C extends LoginChannel>(ref: RefOf<C>, { user, row }: OpenChallenge, outcome: StepOutcome, context: RequestContext): Promise<LoginAnswer<C>> {
    // A generic does not narrow: `at` is the same reference, widened; each branch answers its channel's type.
    const at: ChallengeRef = ref;
    if (at.channel === 'api') {
      if (!outcome.done) return { mfa_required: true, challenge_id: at.challengeId, reason: outcome.reason, methods: outcome.methods, expires_in: CHALLENGE_TTL_SECONDS, sent: outcome.sent } satisfies ChallengeResponse as LoginAnswer<C>;
      const pair = await startSession(user, { deviceId: row.deviceId, deviceName: row.deviceName }, outcome.amr, context);
      return { ...pair, device_token: outcome.deviceToken } satisfies SignedIn as LoginAnswer<C>;
    }
    if (!outcome.done) return undefined as LoginAnswer<C>;
    await recordLogin(user, 'form', outcome.amr, context, { clientId: row.clientId ?? undefined });
    return { user, amr: outcome.amr } satisfies CompletedLogin as LoginAnswer<C>;
  }

  return {
    /**
     * The password step. Answers the channel's answer, and a device cookie to set when the browser has none
     * for this account yet. A browser's new password attempt ends its interaction's earlier challenges.
     */
    async start<C extends LoginChannel>(input: LoginInput, from: Extract<LoginStart, { channel: C }>, context: RequestContext): Promise<{ answer: LoginAnswer<C>; deviceCookie: string | undefined }> {
      const at: LoginStart = from;
      const form = at.channel === 'form' ? at : undefined;
      const checked = await firstFactor.checkPassword(input, { ...context, channel: at.channel, clientId: form?.clientId });
      const { user, deviceCookie } = checked;
      if (form) await challenges.endInteraction(form.interactionUid);
      const origin: LoginOrigin = form
        ? { channel: 'form', clientId: form.clientId, interactionUid: form.interactionUid, deviceDigest: checked.deviceDigest, knownDevice: Boolean(checked.knownDevice) }
        : { channel: 'api', deviceId: input.deviceId, deviceName: input.deviceName, deviceDigest: checked.deviceDigest, cookieDigest: deviceCookie ? checked.cookieDigest : undefined, knownDevice: Boolean(checked.knownDevice) };
      const planned = await plan(user, origin, context.ip);
      if (planned.steps.length) {
        const challenge = await challenges.open(user, origin, planned.steps, context);
        return { answer: (form ? undefined : challenge) as LoginAnswer<C>, deviceCookie };
      }
      if (form) {
        await afterLogin(user, { ...origin, counted: checked.counted }, [], context, planned.facts);
        await recordLogin(user, 'form', ['pwd'], context, { clientId: form.clientId });
        return { answer: { user, amr: ['pwd'] } as LoginAnswer<C>, deviceCookie };
      }
      // An app without a device token gets the cookie just issued as its token (one secret, two carriers).
      const deviceToken = !checked.deviceDigest && deviceCookie ? deviceCookie : undefined;
      await afterLogin(user, { ...origin, deviceDigest: deviceToken ? checked.cookieDigest : origin.deviceDigest, counted: checked.counted }, [], context, planned.facts);
      const pair = await startSession(user, input, ['pwd'], context);
      return { answer: { ...pair, device_token: deviceToken } as LoginAnswer<C>, deviceCookie };
    },

    /** Options for a passwordless passkey sign-in (discoverable credentials, user verification required). */
    async passwordlessOptions(from: PasskeyOptionsStart): Promise<PublicKeyCredentialRequestOptionsJSON> {
      return deps.passkeys.authenticationOptions({ binding: passwordlessBinding(from) });
    },

    /**
     * The passwordless sign-in: a passkey assertion (user verified) for options from passwordlessOptions with
     * the same binding. A passkey is a factor and a user-verified passkey is itself multi-factor (something
     * held, unlocked by something known or inherent: NIST SP 800-63B §5.1.9), so the plan's `mfa` step is
     * passed by it; the new-device and new-network rules, counters, notices and audit are a completed
     * password-and-factor login's (after-login.ts). amr: `hwk` or `swk`, `user`, `mfa`.
     */
    async startWithPasskey<C extends LoginChannel>(response: AuthenticationResponseJSON, from: Extract<PasskeyStart, { channel: C }>, context: RequestContext): Promise<{ answer: LoginAnswer<C>; deviceCookie: string | undefined }> {
      const at: PasskeyStart = from;
      const form = at.channel === 'form' ? at : undefined;
      const app = at.channel === 'api' ? at : undefined;
      const checked = await firstFactor.checkPasskey(response, passwordlessBinding(at), { deviceCookie: at.deviceCookie, deviceToken: app?.deviceToken }, { ...context, channel: at.channel, clientId: form?.clientId });
      const { user, deviceCookie } = checked;
      if (form) await challenges.endInteraction(form.interactionUid);
      const origin: LoginOrigin = form
        ? { channel: 'form', clientId: form.clientId, interactionUid: form.interactionUid, deviceDigest: checked.deviceDigest, knownDevice: Boolean(checked.knownDevice) }
        : { channel: 'api', deviceId: app?.deviceId, deviceName: app?.deviceName, deviceDigest: checked.deviceDigest, cookieDigest: deviceCookie ? checked.cookieDigest : undefined, knownDevice: Boolean(checked.knownDevice) };
      // The user has a factor (this passkey), so the plan is [mfa] and the passkey passed it.
      const { facts } = await plan(user, origin, context.ip);
      const amr = [...checked.amr, 'mfa'];
      if (form) {
        await afterLogin(user, { ...origin, counted: checked.counted }, ['mfa'], context, facts);
        await recordLogin(user, 'form', amr, context, { clientId: form.clientId });
        return { answer: { user, amr } as LoginAnswer<C>, deviceCookie };
      }
      const deviceToken = !checked.deviceDigest && deviceCookie ? deviceCookie : undefined;
      await afterLogin(user, { ...origin, deviceDigest: deviceToken ? checked.cookieDigest : origin.deviceDigest, counted: checked.counted }, ['mfa'], context, facts);
      const pair = await startSession(user, { deviceId: app?.deviceId, deviceName: app?.deviceName }, amr, context);
      return { answer: { ...pair, device_token: deviceToken } as LoginAnswer<C>, deviceCookie };
    },

    /**
     * Options for passing the current `mfa` step of a pending login with a passkey (its challenge is bound to
     * this login and its user); the assertion then goes to `verify(ref, 'webauthn', JSON.stringify(assertion))`.
     */
    async stepPasskeyOptions(ref: ChallengeRef, context: RequestContext): Promise<PublicKeyCredentialRequestOptionsJSON> {
      const { row, user } = await challenges.find(ref, context);
      if (!row.methods.includes(PASSKEY_METHOD)) throw new AppError('method_not_allowed', `method must be one of: ${row.methods.join(', ')}`, 400, { methods: row.methods });
      return deps.passkeys.authenticationOptions({ user, binding: { kind: 'login', id: row.id } });
    },

    /** The user of a login waiting for enrolment and the binding of a passkey registered for it. */
    async passkeyEnrolment(ref: ChallengeRef, context: RequestContext): Promise<{ user: UserRow; binding: PasskeyBinding }> {
      const { user, row } = await challenges.enrolling(ref, context);
      return { user, binding: { kind: 'login', id: row.id } };
    },

    /** Passes the current step with a code: the channel's answer (the sign-in after the last step, else the next step). */
    async verify<C extends LoginChannel>(ref: RefOf<C>, method: string, code: string, context: RequestContext): Promise<LoginAnswer<C>> {
      const found = await challenges.find(ref, context);
      return answer(ref, found, await challenges.verifyStep(found, method, code, context), context);
    },

    /** Sends another code for the current step (429 with Retry-After within the resend limits). */
    async resend(ref: ChallengeRef, method: string, context: RequestContext) {
      const { row, user } = await challenges.find(ref, context);
      if (!row.methods.includes(method) || !CODE_METHODS.has(method)) throw new AppError('method_not_allowed', `a code can be sent for: ${row.methods.filter((m) => CODE_METHODS.has(m)).join(', ') || 'none of this step\'s methods'}`, 400);
      return { ...(await challenges.sendCode(user, row, row.steps[0] as StepReason, method, context)), expires_in: CHALLENGE_TTL_SECONDS };
    },

    /** The user of a login waiting for enrolment (its enrolment routes act for this user instead of a session's). */
    async enrollingUser(ref: ChallengeRef, context: RequestContext): Promise<UserRow> {
      return (await challenges.enrolling(ref, context)).user;
    },

    /** A factor was confirmed for a login waiting for enrolment: the login goes on (or completes). */
    async completeEnrollment<C extends LoginChannel>(ref: RefOf<C>, factorType: string, context: RequestContext, amr?: string[]): Promise<LoginAnswer<C>> {
      const found = await challenges.enrolling(ref, context);
      const proved = amr ?? [deps.methods.get(factorType)?.amr].filter((a): a is string => a !== undefined);
      return answer(ref, found, await challenges.advance(found, proved, context), context);
    },

    /** A browser login's current step, for its page; undefined when the interaction has none open. */
    async pendingStep(interactionUid: string, context: RequestContext) {
      if (!(await challenges.hasOpen(interactionUid))) return undefined;
      const { row, user } = await challenges.find({ channel: 'form', interactionUid }, context);
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
        firstMethod: await challenges.firstMethodOf(user, reason, row.methods),
        destinations: { sms: destination('sms'), email: destination('email') },
        attemptsLeft: CHALLENGE_MAX_ATTEMPTS - row.attempts,
        expiresAt: row.expiresAt,
        /** How long a code sent by SMS or email works, in seconds (for the page's "It expires in ..."). */
        codeTtlSeconds: OTP_TTL_SECONDS,
      };
    },
  };
}
export type LoginService = ReturnType<typeof createLoginService>;
export type PendingStep = NonNullable<Awaited<ReturnType<LoginService['pendingStep']>>>;
