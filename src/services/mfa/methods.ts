/**
 * The built-in sign-in methods: TOTP, SMS and email codes, recovery codes. SMS and email also verify a
 * new device or network for users without a factor (to the account's address, or a verified phone).
 */
import type { AuthMethod, AuthMethodRegistry, StepContext } from '../auth-methods.js';
import { maskDestination, type CodeChannel, type OtpCodeService } from './codes.js';
import type { FactorService } from './factors.js';

export function registerBuiltInMethods(registry: AuthMethodRegistry, deps: { factors: FactorService; codes: OtpCodeService }): void {
  const { factors, codes } = deps;
  const hasFactor = (step: StepContext, type: string) => step.factors.some((f) => f.type === type);

  registry.register({
    id: 'totp',
    amr: 'otp',
    isConfiguredFor: (step) => step.reason === 'mfa' && hasFactor(step, 'totp'),
    verify: async (step, code) => Boolean(await factors.checkTotp(step.user.id, code, step.factors)),
  });

  const codeMethod = (channel: CodeChannel, amr: string): AuthMethod => {
    const destination = (step: StepContext) => factors.destinationFor(step.user, step.factors, channel, step.reason === 'mfa');
    return {
      id: channel,
      amr,
      isConfiguredFor: (step) => destination(step) !== undefined,
      async challenge(step, options) {
        const to = destination(step);
        if (!to) throw new Error(`no ${channel} destination`);
        await codes.send({ userId: step.user.id, challengeId: step.challengeId }, channel, to, options.message(channel), { resend: options.resend, context: options.context });
        return { destination: maskDestination(channel, to) };
      },
      // The challenge counts the step's attempts itself.
      verify: async (step, code) => (await codes.verify({ userId: step.user.id, challengeId: step.challengeId }, channel, code, { countAttempt: false })).ok,
    };
  };
  registry.register(codeMethod('sms', 'sms'));
  // RFC 8176 has no value for a code by email; "email" names it plainly.
  registry.register(codeMethod('email', 'email'));

  registry.register({
    id: 'recovery_code',
    amr: 'otp',
    isConfiguredFor: async (step) => step.reason === 'mfa' && hasFactor(step, 'recovery_code') && (await factors.countUnusedRecoveryCodes(step.user.id)) > 0,
    verify: (step, code) => factors.checkRecoveryCode(step.user.id, code),
  });
}
