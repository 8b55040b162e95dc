/**
 * CSRF protection of our forms: a synchronizer token that needs no server-side state. The token is an HMAC
 * (a key derived from the server secret) of what the form is bound to: a purpose (`interaction`,
 * `password-reset`, ...) and a subject only the legitimate browser knows (the interaction uid from its
 * interaction cookie, the token of the emailed link, a session id). A cross-site page cannot read it, and
 * it is useless for another purpose or subject. Verified in constant time, before anything else in the
 * form is looked at.
 */
import { constantTimeEqual, hmacDigest } from '../lib/crypto.js';

/** Longer than any token this issues (43 characters); longer input is refused before any hashing. */
export const CSRF_TOKEN_MAX_LENGTH = 100;

export interface FormCsrf {
  /** The token a form bound to `purpose` and `subject` carries (a hidden `csrf` field). */
  issue(purpose: string, subject: string): string;
  /** Whether a posted token is the one issued for this purpose and subject. */
  verify(purpose: string, subject: string, token: unknown): boolean;
}

export function createFormCsrf(key: Buffer): FormCsrf {
  // Purposes are our own constants without ':', so `purpose:subject` is unambiguous.
  const issue = (purpose: string, subject: string) => hmacDigest(key, `${purpose}:${subject}`);
  return {
    issue,
    verify: (purpose, subject, token) => typeof token === 'string' && token.length <= CSRF_TOKEN_MAX_LENGTH && constantTimeEqual(issue(purpose, subject), token),
  };
}
