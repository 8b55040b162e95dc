/**
 * A user's second factors: enrolment (TOTP, SMS, email), confirmation, recovery codes, preference and
 * removal after re-authentication, and the checks a sign-in step runs against them.
 *
 * A factor counts only once confirmed: a TOTP code from the new authenticator, or a code sent to the phone
 * or mailbox. TOTP seeds are encrypted at rest (AES-256-GCM, AAD = factor id); recovery codes are 140-bit
 * random values stored as keyed digests, shown once, regenerating them voids the old set.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { isValidPhoneNumber, parsePhoneNumberFromString } from 'libphonenumber-js';
import type { Db } from '../../db/client.js';
import type { FactorType } from '../../queries/mfa.js';
import { AppError } from '../../errors/index.js';
import type { Clock } from '../../lib/clock.js';
import { decrypt, encrypt, hmacDigest } from '../../lib/crypto.js';
import { durationInWords } from '../../lib/duration.js';
import { createMfaQueries, type FactorView } from '../../queries/mfa.js';
import type { UserRow } from '../../queries/users.js';
import type { AuditEvent, AuditService } from '../audit.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { BruteForceProtector } from '../brute-force.js';
import { normalizeEmail } from '../users.js';
import { maskDestination, OTP_TTL_SECONDS, type CodeChannel, type OtpCodeService } from './codes.js';
import { matchTotpStep, newTotpSecret, qrCodeDataUri, totpUri } from './totp.js';
import type { RecentSignIn, SignInProof } from '../recent-sign-in.js';

export const RECOVERY_CODE_COUNT = 10;
/**
 * How long after signing in a session may add a factor or regenerate recovery codes without proving the
 * password or a factor again: a stolen session must not turn into a lasting second factor.
 * @see NIST SP 800-63B §4.2.3 (binding an additional authenticator needs the existing authentication)
 */
/** 28 characters of a 32-letter alphabet = 140 bits (every secret the server generates has ≥ 128 bits of entropy, RFC 6749 §10.10). */
const RECOVERY_CODE_LENGTH = 28;
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'.padEnd(32, 'z');

export interface FactorPublicView {
  id: string;
  type: FactorType;
  label: string;
  preferred: boolean;
  active: boolean;
  created_at: string;
  confirmed_at: string | null;
  last_used_at: string | null;
  /** Recovery codes only: how many are left. */
  remaining?: number | undefined;
}

export type Reauthentication = { password: string } | { method: 'totp' | 'sms' | 'email' | 'recovery_code'; code: string };

export interface FactorChangeNotifier {
  factorChanged(user: UserRow, change: { action: 'added' | 'removed' | 'recovery_codes'; type: FactorType; factorId?: string | undefined }, context?: RequestContext): Promise<void>;
}

/** `+`, then ASCII digits with optional spaces, dots, dashes or parentheses between them (nothing else). */
const PHONE_INPUT = /^\+[0-9][0-9 ().-]{5,24}$/;

export function normalizePhone(input: string): string {
  // libphonenumber's parser is lenient: it extracts a number from surrounding text ("tel:", "; ...",
  // extensions, full-width digits). Only the number itself is accepted, so what is stored is what was typed.
  const trimmed = input.trim();
  const parsed = PHONE_INPUT.test(trimmed) ? parsePhoneNumberFromString(trimmed) : undefined;
  if (!parsed || parsed.ext || !isValidPhoneNumber(parsed.number)) throw new AppError('invalid_request', 'phone: must be a valid phone number in E.164 form, such as +14155552671');
  return parsed.number;
}

function recoveryCode(): string {
  const bytes = randomBytes(RECOVERY_CODE_LENGTH);
  let out = '';
  // 256 is a multiple of 32: every letter is equally likely.
  for (const b of bytes) out += RECOVERY_ALPHABET[b % 32];
  return out.match(/.{4}/g)!.join('-');
}
const normalizeRecoveryCode = (code: string) => code.toLowerCase().replace(/[^a-z0-9]/g, '');

export function createFactorService(deps: {
  db: Db;
  /** Seconds after a session's sign-in within which it may add factors without re-authenticating. */
  /** The recent-sign-in rule (services/recent-sign-in.ts). */
  recentSignIn: RecentSignIn;
  clock: Clock;
  codes: OtpCodeService;
  audit: AuditService;
  secretKey: Buffer;
  recoveryKey: Buffer;
  issuerName: string;
  verifyPassword(userId: string, password: string): Promise<boolean>;
  bruteForce: Pick<BruteForceProtector, 'assertAllowed' | 'recordFailure'>;
  notifier: () => FactorChangeNotifier;
}) {
  const queries = createMfaQueries(deps.db);
  const recoveryDigest = (userId: string, code: string) => hmacDigest(deps.recoveryKey, `${userId}:${normalizeRecoveryCode(code)}`);

  function view(f: FactorView, remaining?: number): FactorPublicView {
    return {
      id: f.id,
      type: f.type,
      label: f.label,
      preferred: f.preferred,
      active: f.confirmedAt !== null,
      created_at: f.createdAt.toISOString(),
      confirmed_at: f.confirmedAt?.toISOString() ?? null,
      last_used_at: f.lastUsedAt?.toISOString() ?? null,
      ...(remaining === undefined ? {} : { remaining }),
    };
  }

  const record = (type: 'mfa.factor_enrolled' | 'mfa.factor_activated' | 'mfa.factor_removed' | 'mfa.factor_updated' | 'mfa.recovery_codes_generated', userId: string, details: Record<string, unknown>, context?: RequestContext, outcome: 'success' | 'failure' = 'success') =>
    deps.audit.record({ type, outcome, actor: { type: 'user', id: userId }, subject: { type: 'user', id: userId }, context, details });

  async function ownFactor(userId: string, factorId: string): Promise<FactorView> {
    const factor = /^[0-9a-f-]{36}$/i.test(factorId) ? await queries.findFactorOfUser(userId, factorId) : undefined;
    if (!factor) throw new AppError('not_found', 'no such factor', 404);
    return factor;
  }

  async function startEnrolment(user: UserRow, type: FactorType, values: { label: string; destination?: string; secret?: (id: string) => string }, context?: RequestContext) {
    // An abandoned enrolment of the same type is replaced by this one.
    await queries.deletePendingFactors(user.id, type);
    const id = randomUUID();
    const factor = await queries.insertFactor({
      id,
      userId: user.id,
      type,
      label: values.label,
      destination: values.destination ?? null,
      secret: values.secret ? values.secret(id) : null,
      createdAt: deps.clock(),
    });
    await record('mfa.factor_enrolled', user.id, { factor_id: factor.id, type }, context);
    return factor;
  }

  async function activate(user: UserRow, factor: FactorView, context?: RequestContext): Promise<FactorPublicView> {
    const now = deps.clock();
    if (!(await queries.confirmFactor(factor.id, now))) throw new AppError('conflict', 'this factor is already active', 409);
    const active = await queries.listActiveFactorsByUser(user.id);
    // The first real factor becomes the preferred one.
    if (!active.some((f) => f.preferred && f.type !== 'recovery_code') && factor.type !== 'recovery_code') await queries.setPreferredFactor(user.id, factor.id);
    await record('mfa.factor_activated', user.id, { factor_id: factor.id, type: factor.type }, context);
    await deps.notifier().factorChanged(user, { action: 'added', type: factor.type, factorId: factor.id }, context);
    const fresh = await queries.findFactorOfUser(user.id, factor.id);
    return view(fresh ?? factor);
  }

  /** TOTP: whether `code` is a step of one of the user's authenticators not accepted before (replay refused). */
  async function checkTotp(userId: string, code: string, factors?: FactorView[]): Promise<string | undefined> {
    const now = deps.clock();
    const totp = (factors ?? (await queries.listActiveFactorsByUser(userId))).filter((f) => f.type === 'totp' && f.confirmedAt);
    for (const factor of totp) {
      const sealed = await queries.findFactorSecret(factor.id);
      if (!sealed) continue;
      const step = await matchTotpStep(decrypt(deps.secretKey, sealed, factor.id), code, now);
      if (step !== undefined && (await queries.acceptTotpStep(factor.id, step, now))) return factor.id;
    }
    return undefined;
  }

  async function checkRecoveryCode(userId: string, code: string): Promise<boolean> {
    if (code.length > 64) return false;
    const factorId = await queries.consumeRecoveryCode(userId, recoveryDigest(userId, code), deps.clock());
    if (factorId) await queries.touchFactor(factorId, deps.clock());
    return Boolean(factorId);
  }

  /** Where codes for `channel` go: the active factor's destination, else (email) the account address or (sms) a verified phone. */
  function destinationFor(user: UserRow, factors: FactorView[], channel: CodeChannel, factorOnly = false): string | undefined {
    const factor = factors.filter((f) => f.type === channel && f.confirmedAt && f.destination).sort((a, b) => Number(b.preferred) - Number(a.preferred))[0];
    if (factor?.destination) return factor.destination;
    if (factorOnly) return undefined;
    if (channel === 'email') return user.email;
    return user.phone && user.phoneVerified ? user.phone : undefined;
  }

  /**
   * The one re-authentication (adding or removing a factor, regenerating recovery codes, changing the
   * password): the current password, or a code from an active factor. It is a sign-in check: it counts
   * against the same brute-force limits as a login, so a stolen session cannot guess the password or a code
   * here at the request rate. True when it passed.
   */
  async function reauthenticate(user: UserRow, reauth: Reauthentication, context?: RequestContext): Promise<boolean> {
    const attempt = { identifier: normalizeEmail(user.email), ip: context?.ip };
    await deps.bruteForce.assertAllowed(attempt);
    let ok: boolean;
    if ('password' in reauth) ok = await deps.verifyPassword(user.id, reauth.password);
    else if (reauth.method === 'totp') ok = Boolean(await checkTotp(user.id, reauth.code));
    else if (reauth.method === 'recovery_code') ok = await checkRecoveryCode(user.id, reauth.code);
    else ok = (await deps.codes.verify({ userId: user.id }, reauth.method, reauth.code, { countAttempt: true })).ok;
    if (!ok) await deps.bruteForce.recordFailure(attempt, context);
    return ok;
  }

  return {
    destinationFor,
    reauthenticate,

    /**
     * Adding a factor or regenerating recovery codes: allowed within RECENT_SIGN_IN_MAX_AGE of the session's
     * sign-in, else only with the password or a code from an active factor. Throws 403
     * `reauthentication_required` when neither is given, 401 `invalid_credentials` when it is wrong.
     */
    async assertMayAddFactor(user: UserRow, signIn: SignInProof, reauth: Reauthentication | undefined, action: 'add_factor' | 'recovery_codes', context?: RequestContext): Promise<void> {
      if (!reauth && (await deps.recentSignIn.recent(user.id, signIn))) return;
      if (!reauth) throw new AppError('reauthentication_required', `this needs a sign-in within the last ${deps.recentSignIn.maxAge} seconds, or the current password or a code from a factor ({password} or {method, code})`, 403, { max_age: deps.recentSignIn.maxAge });
      if (!(await reauthenticate(user, reauth, context))) {
        await record(action === 'recovery_codes' ? 'mfa.recovery_codes_generated' : 'mfa.factor_enrolled', user.id, { reason: 'reauthentication_failed' }, context, 'failure');
        throw new AppError('invalid_credentials', 're-authentication failed', 401);
      }
    },
    checkTotp,
    checkRecoveryCode,
    listActive: (userId: string) => queries.listActiveFactorsByUser(userId),
    countUnusedRecoveryCodes: (userId: string) => queries.countUnusedRecoveryCodes(userId),

    async list(userId: string): Promise<FactorPublicView[]> {
      const factors = await queries.listFactorsByUser(userId);
      const remaining = factors.some((f) => f.type === 'recovery_code') ? await queries.countUnusedRecoveryCodes(userId) : undefined;
      return factors.map((f) => view(f, f.type === 'recovery_code' ? remaining : undefined));
    },

    async enrollTotp(user: UserRow, context?: RequestContext) {
      const secret = newTotpSecret();
      const factor = await startEnrolment(user, 'totp', { label: 'Authenticator app', secret: (id) => encrypt(deps.secretKey, secret, id) }, context);
      const uri = totpUri(deps.issuerName, user.email, secret);
      return { factor_id: factor.id, secret, otpauth_uri: uri, qr_code: await qrCodeDataUri(uri) };
    },

    /** SMS or email: a pending factor and a code to the destination, which must come back to confirm it. */
    async enrollCodeFactor(user: UserRow, channel: CodeChannel, rawDestination: string | undefined, context?: RequestContext) {
      const destination = channel === 'sms' ? normalizePhone(rawDestination ?? '') : normalizeEmail(rawDestination ?? user.email);
      const existing = (await queries.listActiveFactorsByUser(user.id)).find((f) => f.type === channel && f.destination === destination);
      if (existing) throw new AppError('conflict', `this ${channel === 'sms' ? 'phone number' : 'address'} is already a factor`, 409);
      const factor = await startEnrolment(user, channel, { label: maskDestination(channel, destination), destination }, context);
      await deps.codes.send({ userId: user.id, factorId: factor.id }, channel, destination, confirmationMessage(deps.issuerName, channel), { resend: false, context });
      return { factor_id: factor.id };
    },

    /** Activates a pending factor with a code from it. Wrong code: 401 `invalid_code` with attempts left. */
    async confirm(user: UserRow, type: 'totp' | CodeChannel, factorId: string, code: string, context?: RequestContext): Promise<FactorPublicView> {
      const factor = await ownFactor(user.id, factorId);
      if (factor.type !== type) throw new AppError('not_found', 'no such factor', 404);
      if (factor.confirmedAt) throw new AppError('conflict', 'this factor is already active', 409);
      if (type === 'totp') {
        const sealed = await queries.findFactorSecret(factor.id);
        const step = sealed ? await matchTotpStep(decrypt(deps.secretKey, sealed, factor.id), code, deps.clock()) : undefined;
        if (step === undefined || !(await queries.acceptTotpStep(factor.id, step, deps.clock()))) {
          await record('mfa.factor_activated', user.id, { factor_id: factor.id, type, reason: 'wrong_code' }, context, 'failure');
          throw new AppError('invalid_code', 'the code is incorrect', 401);
        }
        return activate(user, factor, context);
      }
      const check = await deps.codes.verify({ userId: user.id, factorId: factor.id }, type, code, { countAttempt: true });
      if (!check.ok && check.reason === 'expired') throw new AppError('challenge_expired', 'the code has expired; enrol again to get a new one', 400);
      if (!check.ok && check.reason === 'exhausted') throw new AppError('too_many_attempts', 'too many wrong codes; enrol again to get a new one', 429, { retry_after: 0 });
      if (!check.ok) {
        await record('mfa.factor_activated', user.id, { factor_id: factor.id, type, reason: 'wrong_code' }, context, 'failure');
        throw new AppError('invalid_code', 'the code is incorrect', 401, { attempts_left: check.attemptsLeft ?? 0 });
      }
      return activate(user, factor, context);
    },

    async generateRecoveryCodes(user: UserRow, context?: RequestContext): Promise<string[]> {
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, recoveryCode);
      const now = deps.clock();
      const factorId = await deps.db.transaction(async (tx) => {
        const q = createMfaQueries(tx);
        await q.deleteFactorsOfType(user.id, 'recovery_code');
        const factor = await q.insertFactor({ userId: user.id, type: 'recovery_code', label: 'Recovery codes', createdAt: now, confirmedAt: now });
        await q.insertRecoveryCodes(codes.map((code) => ({ factorId: factor.id, userId: user.id, codeHash: recoveryDigest(user.id, code) })));
        return factor.id;
      });
      await record('mfa.recovery_codes_generated', user.id, { count: codes.length }, context);
      await deps.notifier().factorChanged(user, { action: 'recovery_codes', type: 'recovery_code', factorId }, context);
      return codes;
    },

    async setPreferred(user: UserRow, factorId: string, context?: RequestContext): Promise<FactorPublicView> {
      const factor = await ownFactor(user.id, factorId);
      if (!factor.confirmedAt || factor.type === 'recovery_code') throw new AppError('invalid_request', 'only an active TOTP, SMS or email factor can be preferred');
      await queries.setPreferredFactor(user.id, factor.id);
      await record('mfa.factor_updated', user.id, { factor_id: factor.id, preferred: true }, context);
      return view({ ...factor, preferred: true });
    },

    /**
     * An administrator's reset (a user lost every factor): all factors and trusted devices go, so the next
     * sign-in verifies the device again and, where MFA is required, enrols a new factor.
     */
    async resetAll(user: UserRow, actor: AuditEvent['actor'], context?: RequestContext): Promise<number> {
      const count = await deps.db.transaction((tx) => createMfaQueries(tx).deleteAllFactorsAndDevices(user.id));
      await deps.audit.record({ type: 'mfa.factor_removed', outcome: 'success', actor, subject: { type: 'user', id: user.id }, context, details: { all: true, count, reset_by_admin: true } });
      if (count) await deps.notifier().factorChanged(user, { action: 'removed', type: 'recovery_code' }, context);
      return count;
    },

    /** Sends a re-authentication code to the user's active SMS or email factor (for removing a factor). */
    async sendReauthCode(user: UserRow, channel: CodeChannel, context?: RequestContext) {
      const destination = destinationFor(user, await queries.listActiveFactorsByUser(user.id), channel, true);
      if (!destination) throw new AppError('method_not_allowed', `there is no active ${channel} factor`, 400);
      return deps.codes.send({ userId: user.id, reauthentication: true }, channel, destination, confirmationMessage(deps.issuerName, channel), { resend: true, context });
    },

    /**
     * Removes a factor after re-authentication with the password or a code from an active factor, or (the
     * account pages) a sign-in within RECENT_SIGN_IN_MAX_AGE, the same recent-sign-in rule as adding one.
     * A sign-in that is not recent: 403 `reauthentication_required`, nothing counted or removed.
     */
    async remove(user: UserRow, factorId: string, proof: Reauthentication | SignInProof, context?: RequestContext): Promise<void> {
      const factor = await ownFactor(user.id, factorId);
      if (!('password' in proof || 'method' in proof)) {
        if (!(await deps.recentSignIn.recent(user.id, proof))) throw new AppError('reauthentication_required', `this needs a sign-in within the last ${deps.recentSignIn.maxAge} seconds`, 403, { max_age: deps.recentSignIn.maxAge });
      } else if (!(await reauthenticate(user, proof, context))) {
        await record('mfa.factor_removed', user.id, { factor_id: factor.id, type: factor.type, reason: 'reauthentication_failed' }, context, 'failure');
        throw new AppError('invalid_credentials', 're-authentication failed', 401);
      }
      await queries.deleteFactor(user.id, factor.id);
      await record('mfa.factor_removed', user.id, { factor_id: factor.id, type: factor.type }, context);
      if (factor.confirmedAt) await deps.notifier().factorChanged(user, { action: 'removed', type: factor.type }, context);
    },
  };
}
export type FactorService = ReturnType<typeof createFactorService>;

/** The message of a code that confirms a factor, a second factor at sign-in or a re-authentication; it names the code's lifetime. */
export function confirmationMessage(issuerName: string, channel: CodeChannel) {
  const expires = `It expires in ${durationInWords(OTP_TTL_SECONDS)}.`;
  return channel === 'sms'
    ? { subject: '', text: `{code} is your ${issuerName} verification code. ${expires} Never share it.` }
    : {
        subject: `Your ${issuerName} verification code: {code}`,
        text: `Your verification code is {code}\n\n${expires} If you did not ask for it, ignore this message; nothing changes without the code.`,
      };
}
