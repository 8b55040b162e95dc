/**
 * Which further steps a sign-in needs after the password, and which method a step is shown with first.
 * Pure decisions: the facts are read elsewhere (risk.ts, the factors, the MFA policy), so the rules can be
 * tested without a database.
 *
 * Steps: `mfa` when the user has an active factor; otherwise `new_device` (device not trusted, with
 * DEVICE_VERIFICATION=challenge) or `new_ip` (network not seen, with IP_VERIFICATION=challenge), by a code
 * to the account's address or verified phone; and `enroll` when MFA is required (MFA_REQUIRED or a role)
 * but the user has no factor, always preceded by a code to the account unless the device is trusted, so a
 * stolen password cannot enrol the thief's authenticator.
 */
import type { StepReason } from '../auth-methods.js';

export interface LoginPolicy {
  required: boolean;
  deviceVerification: 'off' | 'challenge';
  deviceTrustTtl: number;
  ipVerification: 'off' | 'notify' | 'challenge';
  ipVerificationPeriod: number;
}

/** What enrolment offers when MFA is required and the user has no factor yet. */
export const ENROLLABLE_METHODS = ['totp', 'sms', 'email', 'webauthn'] as const;
/** The methods that send a code (and can be sent again). */
export const CODE_METHODS: ReadonlySet<string> = new Set(['sms', 'email']);

export interface PlanFacts {
  /** The user has an active factor other than recovery codes. */
  hasFactor: boolean;
  /** The MFA policy requires a factor of this user (ignored when the user has one). */
  mfaRequired: boolean;
  /** The login's device is trusted (it passed a step before, within DEVICE_TRUST_TTL). */
  trustedDevice: boolean;
  /** The login's network was not seen within IP_VERIFICATION_PERIOD (false when the check is off). */
  newNetwork: boolean;
}

/** The steps after the password, in order; none means the password completes the sign-in. */
export function planSteps(facts: PlanFacts, policy: Pick<LoginPolicy, 'deviceVerification' | 'ipVerification'>): StepReason[] {
  if (facts.hasFactor) return ['mfa'];
  const steps: StepReason[] = [];
  if (!facts.trustedDevice && (policy.deviceVerification === 'challenge' || facts.mfaRequired)) steps.push('new_device');
  else if (facts.newNetwork && policy.ipVerification === 'challenge') steps.push('new_ip');
  if (facts.mfaRequired) steps.push('enroll');
  return steps;
}

/**
 * The method a step is shown with first: for `mfa`, the preferred factor, else an authenticator; then
 * email, SMS, whatever is offered. Enrolment shows a choice, no method.
 */
export function firstMethod(reason: StepReason, methods: readonly string[], preferred: string | undefined): string | undefined {
  if (reason === 'enroll') return undefined;
  if (reason === 'mfa') {
    if (preferred && preferred !== 'recovery_code' && methods.includes(preferred)) return preferred;
    if (methods.includes('totp')) return 'totp';
  }
  return methods.find((m) => m === 'email') ?? methods.find((m) => CODE_METHODS.has(m)) ?? methods[0];
}
