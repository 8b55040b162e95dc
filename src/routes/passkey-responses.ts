/**
 * The result of a WebAuthn ceremony as the pages' script posts it: the `response` form field holds the JSON
 * of @simplewebauthn/browser's answer, checked against the passkey service's schemas before the service
 * sees it (which verifies what matters: challenge, origin, RP id, flags, signature).
 */
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import { registrationResponseSchema } from '../services/passkeys/responses.js';

export { parseAuthenticationResponse } from '../services/passkeys/responses.js';

/** The service's bound on a response's JSON text; a form field longer than this is not one. */
export const PASSKEY_RESPONSE_MAX_LENGTH = 16 * 1024;

/** The registration response in a form field, or undefined when it is not one. */
export function parseRegistrationResponse(text: string): RegistrationResponseJSON | undefined {
  if (text.length > PASSKEY_RESPONSE_MAX_LENGTH) return undefined;
  try {
    const parsed = registrationResponseSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
