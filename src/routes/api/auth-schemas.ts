/** Schemas the auth and MFA routes share: device ids, errors, token pairs and sign-in challenges. */
import { z } from 'zod';

export const deviceIdSchema = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
/**
 * A device's display name, shown in session lists and quoted in security emails: short and printable, so a
 * client cannot write lines of its own (a fake instruction, a link) into a mail the user trusts. No control,
 * format (bidi overrides) or line/paragraph separator characters.
 */
export const deviceNameSchema = z.string().trim().min(1).max(64).regex(/^[^\p{C}\p{Zl}\p{Zp}]+$/u, 'must be a short printable name without line breaks or control characters');
export const noContent = z.null().describe('No content');
export { errorSchema } from './schemas.js';

export const tokenPairSchema = z.object({
  token_type: z.literal('Bearer'),
  access_token: z.string(),
  expires_in: z.number().int(),
  refresh_token: z.string(),
  session_id: z.uuid(),
  /** After a completed sign-in of an app that sent no valid device token: the one to send on its later logins. */
  device_token: z.string().optional(),
});

export const challengeSchema = z.object({
  mfa_required: z.literal(true),
  challenge_id: z.string(),
  reason: z.enum(['mfa', 'new_device', 'new_ip', 'enroll']),
  methods: z.array(z.string()),
  expires_in: z.number().int(),
  sent: z.object({ method: z.string(), destination: z.string() }).optional(),
});
