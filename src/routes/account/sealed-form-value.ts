/**
 * A value a page hands to its own next form without the server keeping it: sealed (AES-256-GCM) and bound
 * to the account session, a purpose and a short lifetime. The account pages use it for what is shown once
 * and must not be stored in clear: new recovery codes (for their download right after generation) and the
 * secret of an authenticator being set up (shown again when a confirmation code was wrong). Another
 * session, another purpose, a changed byte or an expired value opens to nothing.
 */
import { decrypt, encrypt } from '../../lib/crypto.js';
import type { Clock } from '../../lib/clock.js';

/** Longer than any value sealed here (ten recovery codes, or a TOTP secret with its URI); longer input is refused unread. */
export const SEALED_VALUE_MAX_LENGTH = 4096;

export function createSealedFormValues(deps: { key: Buffer; clock: Clock }) {
  const aad = (purpose: string, sessionId: string) => `account-form:${purpose}:${sessionId}`;
  return {
    seal<T>(purpose: string, sessionId: string, value: T, ttlSeconds: number): string {
      return encrypt(deps.key, JSON.stringify({ value, expiresAt: deps.clock().getTime() + ttlSeconds * 1000 }), aad(purpose, sessionId));
    },
    open<T>(purpose: string, sessionId: string, sealed: unknown): T | undefined {
      if (typeof sealed !== 'string' || sealed.length > SEALED_VALUE_MAX_LENGTH) return undefined;
      try {
        const { value, expiresAt } = JSON.parse(decrypt(deps.key, sealed, aad(purpose, sessionId))) as { value: T; expiresAt: number };
        return expiresAt > deps.clock().getTime() ? value : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
export type SealedFormValues = ReturnType<typeof createSealedFormValues>;
