/**
 * The shapes of the browser's WebAuthn answers (PublicKeyCredential.toJSON(), as @simplewebauthn/browser
 * returns them), validated before anything reads them. Sizes are bounded: a credential id is at most 1023
 * bytes (WebAuthn §5.8.3), the rest far below these limits for any real authenticator.
 */
import { z } from 'zod';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';

const b64url = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+={0,2}$/, 'must be base64url');
const transports = z.array(z.enum(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'])).max(8);
const clientExtensionResults = z.object({ credProps: z.object({ rk: z.boolean().optional() }).optional() }).loose();

export const authenticationResponseSchema = z.object({
  id: b64url(1400),
  rawId: b64url(1400),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64url(4096),
    authenticatorData: b64url(4096),
    signature: b64url(1024),
    userHandle: b64url(128).optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults,
}) satisfies z.ZodType<AuthenticationResponseJSON>;

export const registrationResponseSchema = z.object({
  id: b64url(1400),
  rawId: b64url(1400),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64url(4096),
    attestationObject: b64url(16384),
    authenticatorData: b64url(4096).optional(),
    transports: transports.optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: b64url(4096).optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults,
}) satisfies z.ZodType<RegistrationResponseJSON>;

/** An assertion sent as JSON text (a login step's proof); undefined when it is not one. */
export function parseAuthenticationResponse(text: string): AuthenticationResponseJSON | undefined {
  if (text.length > 16384) return undefined;
  try {
    const parsed = authenticationResponseSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
