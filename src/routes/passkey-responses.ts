/**
 * The result of a WebAuthn ceremony as the pages' script posts it (the `response` form field: the JSON of
 * @simplewebauthn/browser's RegistrationResponseJSON or AuthenticationResponseJSON, WebAuthn §5.1 `toJSON`),
 * checked for shape before any service sees it. The service verifies everything that matters (challenge,
 * origin, RP id, flags, signature).
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';

/** A response with attestation `none` is about 1 KB; a form field longer than this is not one. */
export const PASSKEY_RESPONSE_MAX_LENGTH = 6 * 1024;

const base64url = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+$/);
const transports = z.array(z.enum(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'])).max(8);
const common = {
  id: base64url(1400),
  rawId: base64url(1400),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()),
};

const registrationResponse = z.object({
  ...common,
  response: z.object({
    clientDataJSON: base64url(2048),
    attestationObject: base64url(4096),
    authenticatorData: base64url(4096).optional(),
    transports: transports.optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: base64url(2048).optional(),
  }),
});

const authenticationResponse = z.object({
  ...common,
  response: z.object({
    clientDataJSON: base64url(2048),
    authenticatorData: base64url(2048),
    signature: base64url(1024),
    userHandle: base64url(128).optional(),
  }),
});

function parseJson(text: string): unknown {
  if (text.length > PASSKEY_RESPONSE_MAX_LENGTH) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The registration response in a form field, or undefined when it is not one. */
export function parseRegistrationResponse(text: string): RegistrationResponseJSON | undefined {
  const parsed = registrationResponse.safeParse(parseJson(text));
  return parsed.success ? (parsed.data as RegistrationResponseJSON) : undefined;
}

/** The authentication response (assertion) in a form field, or undefined when it is not one. */
export function parseAuthenticationResponse(text: string): AuthenticationResponseJSON | undefined {
  const parsed = authenticationResponse.safeParse(parseJson(text));
  return parsed.success ? (parsed.data as AuthenticationResponseJSON) : undefined;
}
