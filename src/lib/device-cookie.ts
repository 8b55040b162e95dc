/**
 * OWASP device cookies: after a successful login the browser gets a signed cookie naming the account
 * (by digest) and a random nonce. A later login for that account presenting a valid cookie counts its
 * failures separately, so an attacker's failures from unknown devices cannot lock the real user out.
 * Apps get the same signed value as a device token in the JSON body (they have no cookie jar to rely on).
 * @see https://owasp.org/www-community/Slow_Down_Online_Guessing_Attacks_with_Device_Cookies
 */
import { constantTimeEqual, hmacDigest, randomToken } from './crypto.js';

export const DEVICE_COOKIE = 'keryu.device';
/** One year: a device stays known as long as the user keeps signing in from it. */
export const DEVICE_COOKIE_MAX_AGE = 365 * 86400;

export function issueDeviceCookie(key: Buffer, identifierDigest: string, nonce: string = randomToken()): string {
  return `${nonce}.${hmacDigest(key, `${identifierDigest}.${nonce}`)}`;
}

/** The cookie's nonce when it was issued for this identifier, else undefined. */
export function verifyDeviceCookie(key: Buffer, identifierDigest: string, value: string | undefined): string | undefined {
  if (!value || value.length > 200) return undefined;
  const [nonce, mac] = value.split('.');
  if (!nonce || !mac) return undefined;
  return constantTimeEqual(hmacDigest(key, `${identifierDigest}.${nonce}`), mac) ? nonce : undefined;
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function deviceCookieHeader(value: string, secure: boolean): string {
  return `${DEVICE_COOKIE}=${value}; Path=/; Max-Age=${DEVICE_COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}
