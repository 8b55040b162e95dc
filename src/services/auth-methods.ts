/**
 * The ways a sign-in step after the password can be passed. Each method is a strategy behind one
 * interface, kept in a registry, so a new factor (a passkey) is one more file that calls `register`.
 * Which steps a login needs is the login service's decision; which methods can pass a step is each
 * method's (`isConfiguredFor`).
 */
import type { FactorView } from '../queries/mfa.js';
import type { UserRow } from '../queries/users.js';
import type { RequestContext } from '../lib/request-context.js';
import type { CodeChannel, CodeMessage } from './mfa/codes.js';

/** Why a login needs a further step: a second factor, an unverified device, a new network, or enrolment. */
export type StepReason = 'mfa' | 'new_device' | 'new_ip' | 'enroll';

export interface StepContext {
  user: UserRow;
  /** The user's active factors. */
  factors: FactorView[];
  reason: Exclude<StepReason, 'enroll'>;
  /** The login challenge's row id (codes sent for it belong to it). */
  challengeId: string;
}

export interface ChallengeOptions {
  /** A second or later send for this challenge and method (the resend interval applies). */
  resend: boolean;
  message: (channel: CodeChannel) => CodeMessage;
  context?: RequestContext | undefined;
}

/**
 * What checking a proof found: false (refused), true (passed, proving the method's `amr`), or the amr values
 * this proof showed where they depend on the authenticator (a passkey: `hwk` or `swk`, and `user`).
 */
export type MethodResult = boolean | { amr: string[] };

export interface AuthMethod {
  /** The `method` value clients send. */
  readonly id: string;
  /** The RFC 8176 `amr` value a success adds (unless `verify` names its own). */
  readonly amr: string;
  /** Whether this user can pass a step of this kind with this method. */
  isConfiguredFor(step: StepContext): boolean | Promise<boolean>;
  /** Methods that deliver a code: sends one for the step; answers where it went (masked). */
  challenge?(step: StepContext, options: ChallengeOptions): Promise<{ destination: string }>;
  /** Checks the proof: a code, or (a passkey) the assertion as JSON. */
  verify(step: StepContext, code: string, context?: RequestContext): Promise<MethodResult>;
}

export function createAuthMethodRegistry() {
  const methods = new Map<string, AuthMethod>();
  return {
    register(method: AuthMethod): void {
      methods.set(method.id, method);
    },
    get(id: string): AuthMethod | undefined {
      return methods.get(id);
    },
    async configuredFor(step: StepContext): Promise<AuthMethod[]> {
      const out: AuthMethod[] = [];
      for (const method of methods.values()) if (await method.isConfiguredFor(step)) out.push(method);
      return out;
    },
  };
}
export type AuthMethodRegistry = ReturnType<typeof createAuthMethodRegistry>;
