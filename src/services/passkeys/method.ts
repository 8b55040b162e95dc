/**
 * Passkeys as a sign-in method: one more entry in the registry. A user with a passkey can pass the `mfa`
 * step with an assertion (as JSON) for a challenge made for that login (`login.stepPasskeyOptions`); the
 * amr it adds is the passkey's own (`hwk` or `swk`, `user` when verified), and the step adds `mfa`.
 */
import type { AuthMethodRegistry } from '../auth-methods.js';
import { parseAuthenticationResponse } from './responses.js';
import type { PasskeyService } from './service.js';

export const PASSKEY_METHOD = 'webauthn';

export function registerPasskeyMethod(registry: AuthMethodRegistry, deps: { passkeys: PasskeyService }): void {
  registry.register({
    id: PASSKEY_METHOD,
    amr: 'hwk',
    isConfiguredFor: (step) => step.reason === 'mfa' && step.factors.some((f) => f.type === 'webauthn'),
    async verify(step, proof, context) {
      const response = parseAuthenticationResponse(proof);
      if (!response) return false;
      const check = await deps.passkeys.verifyAuthentication({ response, binding: { kind: 'login', id: step.challengeId }, userId: step.user.id }, context);
      return check.ok ? { amr: check.amr } : false;
    },
  });
}
